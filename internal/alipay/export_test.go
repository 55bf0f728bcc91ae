package alipay

import "time"

// SetClock fixes the clock a Client stamps its requests with, for tests.
func SetClock(c *Client, now func() time.Time) { c.now = now }
