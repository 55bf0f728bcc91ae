// Package check validates flashgate's deploy files with the libraries the
// real tools are made of, offline: the Kubernetes manifests are built with
// kustomize's own API (what `kustomize build` and `kubectl apply -k` run)
// and every object is decoded strictly into the Kubernetes API types (an
// unknown or misspelt field fails, as the API server's strict field
// validation would); the compose file is loaded by compose-go (what `docker
// compose config` runs: the Compose JSON schema, interpolation, profiles).
// On top of that it checks what the project promises about them: each role
// gets only its secrets, probes and scrape annotations name real ports, the
// image is rewritten everywhere, compose refuses to start without secrets.
//
// It is a module of its own so that these heavy dependencies stay out of
// flashgate's go.mod; `make deploy-check` runs it.
package check
