package procstat

import (
	"os"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	// A command name with a space and a ')' in it, as the kernel allows.
	stat := "3807 (mariadbd) x) S 1 3806 3806 0 -1 4194624 96085 0 11 0 12345 678 0 0 20 0 14 0 4135 3117416448 60361 18446744073709551615 1 1 0 0 0 0 0 4096 1 0 0 0 17 1 0 0 0 0 0\n"
	got, err := Parse([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if want := (12345 + 678) * 10 * time.Millisecond; got != want {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"3807 mariadbd S 1", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 -5 6 0"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}

// TestCPUOfSelf reads this process's CPU time after burning some: it is
// there and it grew.
func TestCPUOfSelf(t *testing.T) {
	before, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for x, end := 0, time.Now().Add(50*time.Millisecond); time.Now().Before(end); x++ {
		_ = x * x
	}
	after, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Errorf("CPU went from %v to %v after 50 ms of spinning", before, after)
	}
}
