package paysim

import "time"

// SetClock replaces the Sim's clock, for tests; call it before the Sim is used.
func SetClock(s *Sim, now func() time.Time) { s.now = now }
