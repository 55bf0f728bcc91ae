package config

// Secrets that only `flashgate dev` falls back to when none is configured.
// Every other role refuses to start without real ones.
const (
	DevAuthSecret = "flashgate-dev-secret-not-for-production-use"
	DevAdminToken = "dev-admin-token"
)
