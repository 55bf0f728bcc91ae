package flashgate

import "time"

// ActivityStatus is where an activity is in its lifecycle (contract §11):
// draft → scheduled → upcoming → live → ended → archived. It is computed
// here, once, from the activity's times; every role reads it the same way.
type ActivityStatus string

// Activity statuses of the contract.
const (
	StatusDraft     ActivityStatus = "draft"
	StatusScheduled ActivityStatus = "scheduled"
	StatusUpcoming  ActivityStatus = "upcoming"
	StatusLive      ActivityStatus = "live"
	StatusEnded     ActivityStatus = "ended"
	StatusArchived  ActivityStatus = "archived"
)

// ParseActivityStatus returns the status named s, or false.
func ParseActivityStatus(s string) (ActivityStatus, bool) {
	switch st := ActivityStatus(s); st {
	case StatusDraft, StatusScheduled, StatusUpcoming, StatusLive, StatusEnded, StatusArchived:
		return st, true
	}
	return "", false
}

// StatusAt returns the activity's status at now.
func (a *Activity) StatusAt(now time.Time) ActivityStatus {
	switch {
	case a.ArchivedAt != nil:
		return StatusArchived
	case a.PublishedAt == nil && a.PublishAt != nil:
		return StatusScheduled
	case a.PublishedAt == nil:
		return StatusDraft
	case !now.Before(a.EndAt):
		return StatusEnded
	case now.Before(a.StartAt):
		return StatusUpcoming
	}
	return StatusLive
}
