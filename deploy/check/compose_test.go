package check

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// The variables compose must refuse to start without.
var composeSecrets = []string{
	"FLASHGATE_AUTH_SECRET", "FLASHGATE_ADMIN_TOKEN", "FLASHGATE_MYSQL_PASSWORD",
	"MARIADB_ROOT_PASSWORD", "FLASHGATE_REDIS_PASSWORD",
}

// Secret settings of the roles, and which role may hold each.
var roleSecrets = map[string][]string{
	"FLASHGATE_AUTH_SECRET":    {"gateway"},
	"FLASHGATE_ADMIN_TOKEN":    {"admin"},
	"FLASHGATE_MYSQL_PASSWORD": {"gateway", "worker", "admin", "migrate"},
	"FLASHGATE_REDIS_PASSWORD": {"gateway", "worker", "admin"},
}

func testSecrets(except string) []string {
	var env []string
	for _, k := range composeSecrets {
		if k != except {
			env = append(env, k+"=test-"+strings.ToLower(k)+"-0123456789abcdef0123456789")
		}
	}
	return env
}

func loadCompose(t *testing.T, env []string, profiles ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../compose.yaml"},
		cli.WithWorkingDirectory(".."), cli.WithEnv(env), cli.WithProfiles(profiles))
	if err != nil {
		t.Fatal(err)
	}
	return opts.LoadProject(context.Background())
}

func TestComposeRefusesWithoutSecrets(t *testing.T) {
	raw, err := os.ReadFile("../compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Every interpolation requires its variable (${VAR:?message}): no
	// fallback to a value everyone can read in this repository.
	for _, m := range regexp.MustCompile(`(^|[^$])\$\{([^}]*)\}`).FindAllStringSubmatch(string(raw), -1) {
		if !regexp.MustCompile(`^\w+:\?.+`).MatchString(m[2]) {
			t.Errorf("compose.yaml: ${%s} does not require its variable (use ${VAR:?message})", m[2])
		}
	}
	if strings.Contains(strings.ToLower(string(raw)), "change-me") {
		t.Error("compose.yaml still carries a change-me placeholder")
	}
	for _, missing := range composeSecrets {
		_, err := loadCompose(t, testSecrets(missing), "kafka")
		if err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("compose without %s: %v, want an error naming it", missing, err)
		}
	}
}

func TestComposeProfiles(t *testing.T) {
	for _, profiles := range [][]string{{"kafka"}, {"demo"}, {"kafka", "monitoring"}} {
		t.Run(strings.Join(profiles, "+"), func(t *testing.T) {
			p, err := loadCompose(t, testSecrets(""), profiles...)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			checkCompose(t, p, profiles)
		})
	}
}

func env(s types.ServiceConfig, k string) string {
	if v := s.Environment[k]; v != nil {
		return *v
	}
	return ""
}

func checkCompose(t *testing.T, p *types.Project, profiles []string) {
	// No service carries a password inside a DSN: FLASHGATE_MYSQL_PASSWORD does.
	for name, s := range p.Services {
		if dsn := env(s, "FLASHGATE_MYSQL_DSN"); strings.Contains(strings.SplitN(dsn, "@", 2)[0], ":") {
			t.Errorf("%s: FLASHGATE_MYSQL_DSN holds a password; use FLASHGATE_MYSQL_PASSWORD", name)
		}
	}
	roles := map[string]string{"migrate": "", "gateway": "FLASHGATE_HTTP_ADDR", "worker": "FLASHGATE_WORKER_ADDR", "admin": "FLASHGATE_ADMIN_ADDR"}
	for role, listener := range roles {
		s, ok := p.Services[role]
		if !ok {
			t.Fatalf("no service %s", role)
		}
		if len(s.Command) == 0 || s.Command[0] != role {
			t.Errorf("%s: command %v", role, s.Command)
		}
		for k, may := range roleSecrets {
			has := env(s, k) != ""
			if want := slices.Contains(may, role); has != want {
				t.Errorf("%s: holds %s = %v, want %v", role, k, has, want)
			}
		}
		if role == "migrate" {
			continue
		}
		// Ready means /readyz on the role's own listener.
		addr := env(s, listener)
		_, port, err := net.SplitHostPort(addr)
		if err != nil || !strings.HasPrefix(addr, "0.0.0.0:") {
			t.Errorf("%s: %s=%q, want 0.0.0.0:PORT", role, listener, addr)
		}
		if hc := s.HealthCheck; hc == nil || !slices.Contains(hc.Test, fmt.Sprintf("http://127.0.0.1:%s/readyz", port)) {
			t.Errorf("%s: healthcheck %v, want /readyz on port %s", role, s.HealthCheck, port)
		}
		for dep, d := range s.DependsOn {
			if _, ok := p.Services[dep]; !ok && d.Required {
				t.Errorf("%s depends on %s, which does not run with profiles %v", role, dep, profiles)
			}
		}
	}

	// The Redis Cluster: the roles' seeds are three cluster-enabled nodes.
	seeds := strings.Split(env(p.Services["gateway"], "FLASHGATE_REDIS_ADDR"), ",")
	if len(seeds) != 3 {
		t.Errorf("FLASHGATE_REDIS_ADDR lists %d nodes, want the 3 masters", len(seeds))
	}
	for _, seed := range seeds {
		host, _, _ := net.SplitHostPort(seed)
		node, ok := p.Services[host]
		if !ok || !strings.Contains(strings.Join(node.Command, " "), "--cluster-enabled yes") {
			t.Errorf("seed %s is not a cluster-enabled Redis service", seed)
		}
	}
	if _, ok := p.Services["redis-cluster"]; !ok {
		t.Error("no redis-cluster service forms the cluster")
	}

	// Exactly one Kafka side: Apache Kafka, or (demo) flashgate broker
	// under the name kafka.
	_, kafka := p.Services["kafka"]
	broker, demo := p.Services["broker"]
	if kafka == demo {
		t.Errorf("profiles %v run kafka=%v broker=%v, want exactly one", profiles, kafka, demo)
	}
	if demo {
		if !slices.Equal(broker.Profiles, []string{"demo"}) || len(broker.Command) == 0 || broker.Command[0] != "broker" {
			t.Errorf("broker: profiles %v command %v: flashgate broker belongs to the demo profile only", broker.Profiles, broker.Command)
		}
		if n := broker.Networks["default"]; n == nil || !slices.Contains(n.Aliases, "kafka") {
			t.Error("broker: not reachable as kafka")
		}
	}

	// Monitoring: the scrape config reaches every role on its listener and
	// the mounted files exist.
	if slices.Contains(profiles, "monitoring") {
		for _, name := range []string{"prometheus", "grafana"} {
			for _, v := range p.Services[name].Volumes {
				if v.Type == types.VolumeTypeBind {
					if _, err := os.Stat(v.Source); err != nil {
						t.Errorf("%s mounts %s: %v", name, v.Source, err)
					}
				}
			}
		}
		targets := scrapeTargets(t, filepath.Join("..", "monitoring", "prometheus.yml"))
		for role, listener := range roles {
			if role == "migrate" {
				continue
			}
			_, port, _ := net.SplitHostPort(env(p.Services[role], listener))
			want := role + ":" + port
			if !slices.Contains(targets["flashgate-"+role], want) {
				t.Errorf("prometheus.yml job flashgate-%s scrapes %v, want %s", role, targets["flashgate-"+role], want)
			}
		}
	}
}

// scrapeTargets returns the host:port each job of a Prometheus config
// scrapes (static targets and DNS names with their port).
func scrapeTargets(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := map[string][]string{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, s := range sc.StaticConfigs {
			out[sc.JobName] = append(out[sc.JobName], s.Targets...)
		}
		for _, d := range sc.DNSSDConfigs {
			for _, n := range d.Names {
				out[sc.JobName] = append(out[sc.JobName], fmt.Sprintf("%s:%d", n, d.Port))
			}
		}
	}
	return out
}
