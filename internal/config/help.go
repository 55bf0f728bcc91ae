package config

import (
	"flag"
	"fmt"
	"io"
)

// roleHelp says what each role does, for the top of its --help.
var roleHelp = map[string]string{
	RoleDev: `Every role in one process (gateway, admin, worker), for a laptop: applies the
schema first, embeds a Kafka-protocol broker when FLASHGATE_KAFKA_BROKERS is
empty, runs an Alipay sandbox, falls back to public dev secrets, and prints the
URLs and tokens it uses. Never for production.`,
	RoleGateway: `The public HTTP front door: the buy path (token check, rate limits and bans,
one Redis script per possible yes, reservation queued to Kafka), items,
activities, orders, payment and the order-status WebSocket. Stateless: run as
many as the traffic needs.`,
	RoleWorker: `The Kafka consumers that write reservations to MySQL as orders, and the
background jobs: outbox relay, stock-transfer reconciler, restocker, expiry of
unpaid orders. Run two or more; they share the topic's partitions.`,
	RoleAdmin: `The admin HTTP API (Authorization: Bearer FLASHGATE_ADMIN_TOKEN): activities,
items, publish, stats, bans, points. Keep its listener private.`,
	RoleMigrate: `Creates the database if missing and applies the schema. Idempotent: run it
before a new version starts.`,
	RoleToken: `Prints a shopper token for a user, signed with FLASHGATE_AUTH_SECRET (or dev's
public secret when unset), for tests, demos and load tests.`,
	RoleBroker: `A Kafka-protocol broker kept in memory (franz-go's kfake), for local fleets,
demos and tests, never for production: creates the reservation topic, then
serves until SIGTERM or SIGINT. With FLASHGATE_KAFKA_SASL it requires that
mechanism, FLASHGATE_KAFKA_USERNAME and FLASHGATE_KAFKA_PASSWORD; with
--tls-cert and --tls-key it speaks TLS only.`,
}

// printHelp writes a role's --help: what it does, then each setting it uses
// with its type, help, variable, default and current value (a secret only
// as set or not set), then the command's own flags.
func printHelp(w io.Writer, role string, fs *flag.FlagSet, vals map[string]*string, from map[string]string) {
	fmt.Fprintf(w, "Usage: flashgate %s [flags]\n\n", role)
	if h := roleHelp[role]; h != "" {
		fmt.Fprintf(w, "%s\n\n", h)
	}
	// The command's own flags are the ones that are neither settings nor
	// help.
	own := func(f *flag.Flag) bool {
		switch f.Value.(type) {
		case flagValue, *helpFlag:
			return false
		}
		return true
	}
	any := false
	fs.VisitAll(func(f *flag.Flag) { any = any || own(f) })
	if any {
		fmt.Fprintln(w, "Flags of this command:")
		fs.VisitAll(func(f *flag.Flag) {
			if !own(f) {
				return
			}
			kind, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  --%s %s\n        %s", f.Name, kind, usage)
			if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "false" {
				fmt.Fprintf(w, " (default %s)", f.DefValue)
			}
			fmt.Fprintln(w)
		})
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Settings (each an environment variable and a flag; the flag wins; a secret")
	fmt.Fprintln(w, "may also come from a file named by its variable plus _FILE):")
	for i := range settings {
		s := &settings[i]
		p := vals[s.Env]
		if p == nil {
			continue
		}
		fmt.Fprintf(w, "  --%s %s\n        %s\n        %s", s.Flag(), s.Type, s.Help, s.Env)
		switch {
		case s.Type == Secret && from[s.Env] == s.Env+"_FILE":
			fmt.Fprintf(w, ": %s (from %s_FILE)", s.Show(*p), s.Env)
		case s.Type == Secret:
			fmt.Fprintf(w, ": %s", s.Show(*p))
		case from[s.Env] != "":
			fmt.Fprintf(w, "=%s", s.Show(*p))
			if s.Default != "" {
				fmt.Fprintf(w, " (default %s)", s.Show(s.Default))
			}
		case s.Default != "":
			fmt.Fprintf(w, " (default %s)", s.Show(s.Default))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "  -h, --help\n        print this help")
}
