package flashgate

import (
	"errors"
	"fmt"
)

// Code is the machine-readable outcome of an API call (contract §4).
type Code string

// The contract's codes.
const (
	OK           Code = "ok"
	Invalid      Code = "invalid"
	Unauthorized Code = "unauthorized"
	Forbidden    Code = "forbidden"
	NotFound     Code = "not_found"
	Conflict     Code = "conflict"
	Duplicate    Code = "duplicate"
	SoldOut      Code = "sold_out"
	NotStarted   Code = "not_started"
	Ended        Code = "ended"
	RateLimited  Code = "rate_limited"
	Unavailable  Code = "unavailable"
	Internal     Code = "internal"
)

// Error is a domain error: a contract code and a message safe to show.
type Error struct {
	Code    Code
	Message string
	// OrderID is set on Duplicate: the order the user already holds; and on
	// the Unavailable of a buy whose unit was taken: the order it will become.
	OrderID string
	// Status overrides the code's default HTTP status where the contract
	// allows two (400 or 422 for invalid).
	Status int
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err: its own if it is or wraps an *Error,
// Internal otherwise, OK for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the message of err safe to show to a client: the
// *Error's message, or a generic text for anything else, so that nothing
// internal leaks.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// HTTPStatus maps a code to the contract's HTTP status.
func HTTPStatus(c Code) int {
	switch c {
	case OK:
		return 200
	case Invalid:
		return 400
	case Unauthorized:
		return 401
	case Forbidden, NotStarted, Ended:
		return 403
	case NotFound:
		return 404
	case Conflict, Duplicate:
		return 409
	case SoldOut:
		return 410
	case RateLimited:
		return 429
	case Unavailable:
		return 503
	}
	return 500
}
