package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flashgate/flashgate/internal/config"
)

// Every setting of the table is documented in the README or docs/, so that a
// new setting cannot ship unexplained.
func TestEverySettingIsDocumented(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	files = append(files, "../../README.md")
	var lines []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.Split(string(b), "\n")...)
	}
	documented := func(env string) bool {
		for _, l := range lines {
			if strings.Contains(l, env) {
				return true
			}
			// A family in one row: `FLASHGATE_REDIS_USERNAME`, `_PASSWORD`.
			for i := strings.Index(env, "_"); i > 0; i = nextUnderscore(env, i) {
				if strings.Contains(l, "`"+env[i:]+"`") && strings.Contains(l, env[:i+1]) {
					return true
				}
			}
		}
		return false
	}
	for _, s := range config.Settings() {
		if !documented(s.Env) {
			t.Errorf("%s is not documented in README.md or docs/", s.Env)
		}
	}
}

func nextUnderscore(s string, i int) int {
	j := strings.Index(s[i+1:], "_")
	if j < 0 {
		return -1
	}
	return i + 1 + j
}
