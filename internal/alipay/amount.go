package alipay

import (
	"errors"
	"fmt"
	"strings"
)

// maxCents is Alipay's ceiling for one amount: 100000000.00 yuan.
const maxCents = 100_000_000_00

// ParseAmount reads a money string the way Alipay writes amounts (yuan, at
// most two decimals: "19.9", "19.90", "20") into cents. Signs, exponents,
// spaces and amounts above 100000000.00 are refused.
func ParseAmount(s string) (int64, error) {
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || len(intPart) > 9 || len(frac) > 2 || (hasDot && frac == "") {
		return 0, fmt.Errorf("parse amount %q: want yuan with at most two decimals", s)
	}
	var cents int64
	for _, r := range intPart {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("parse amount %q: not a number", s)
		}
		cents = cents*10 + int64(r-'0')
	}
	frac += "00"[len(frac):]
	for _, r := range frac {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("parse amount %q: not a number", s)
		}
		cents = cents*10 + int64(r-'0')
	}
	if cents > maxCents {
		return 0, errors.New("parse amount: above 100000000.00")
	}
	return cents, nil
}

// FormatAmount writes cents as Alipay expects total_amount: yuan with exactly
// two decimals ("19.90").
func FormatAmount(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}

// AmountEqual reports whether two money strings name the same amount exactly
// ("19.9" equals "19.90"). An unreadable amount equals nothing, not even
// itself, so a mangled notify never matches an order.
func AmountEqual(a, b string) bool {
	x, err := ParseAmount(a)
	if err != nil {
		return false
	}
	y, err := ParseAmount(b)
	if err != nil {
		return false
	}
	return x == y
}
