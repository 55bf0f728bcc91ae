package alipay_test

import (
	"testing"

	"github.com/flashgate/flashgate/internal/alipay"
)

func TestParseAmount(t *testing.T) {
	good := map[string]int64{
		"0": 0, "0.01": 1, "19.9": 1990, "19.90": 1990, "20": 2000, "020.5": 2050,
		"100000000": 100_000_000_00, "100000000.00": 100_000_000_00,
	}
	for in, want := range good {
		got, err := alipay.ParseAmount(in)
		if err != nil || got != want {
			t.Errorf("ParseAmount(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", ".", "1.", ".5", "1.234", "-1", "+1", "1e3", " 1", "1 ", "1,00",
		"100000000.01", "1000000000", "１", "0x10", "NaN", "1.2.3"} {
		if got, err := alipay.ParseAmount(in); err == nil {
			t.Errorf("ParseAmount(%q) = %d, want an error", in, got)
		}
	}
}

func TestAmountEqual(t *testing.T) {
	equal := [][2]string{{"19.9", "19.90"}, {"20", "20.00"}, {"0.1", "0.10"}, {"007", "7"}}
	for _, c := range equal {
		if !alipay.AmountEqual(c[0], c[1]) {
			t.Errorf("AmountEqual(%q, %q) = false", c[0], c[1])
		}
	}
	differ := [][2]string{{"19.9", "19.09"}, {"19.90", "19.91"}, {"1", "0.1"}, {"x", "x"}, {"", ""}, {"1.001", "1.00"}}
	for _, c := range differ {
		if alipay.AmountEqual(c[0], c[1]) {
			t.Errorf("AmountEqual(%q, %q) = true", c[0], c[1])
		}
	}
}

func TestFormatAmount(t *testing.T) {
	for cents, want := range map[int64]string{0: "0.00", 1: "0.01", 1990: "19.90", 2000: "20.00", -5: "-0.05"} {
		if got := alipay.FormatAmount(cents); got != want {
			t.Errorf("FormatAmount(%d) = %q, want %q", cents, got, want)
		}
	}
}
