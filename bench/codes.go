package bench

import "bytes"

// code is a response's contract code (CONTRACT §4) as a small integer, so
// the request loop counts answers in an array instead of a map.
type code uint8

const (
	codeOK code = iota
	codeInvalid
	codeUnauthorized
	codeForbidden
	codeNotFound
	codeConflict
	codeDuplicate
	codeSoldOut
	codeNotStarted
	codeEnded
	codeRateLimited
	codeUnavailable
	codeInternal
	codeOther     // a code the contract does not name
	codeNoCode    // an answer without a code field
	codeTransport // no HTTP answer at all: refused, reset, timed out
	numCodes
)

// String returns the name used in reports: the contract's code, or one of
// "other", "no_code" and "transport_error".
func (c code) String() string {
	switch c {
	case codeOK:
		return "ok"
	case codeInvalid:
		return "invalid"
	case codeUnauthorized:
		return "unauthorized"
	case codeForbidden:
		return "forbidden"
	case codeNotFound:
		return "not_found"
	case codeConflict:
		return "conflict"
	case codeDuplicate:
		return "duplicate"
	case codeSoldOut:
		return "sold_out"
	case codeNotStarted:
		return "not_started"
	case codeEnded:
		return "ended"
	case codeRateLimited:
		return "rate_limited"
	case codeUnavailable:
		return "unavailable"
	case codeInternal:
		return "internal"
	case codeOther:
		return "other"
	case codeNoCode:
		return "no_code"
	}
	return "transport_error"
}

// parseCode reads the "code" field of a JSON answer without decoding it.
func parseCode(body []byte) code {
	v, ok := jsonString(body, "code")
	if !ok {
		return codeNoCode
	}
	// A switch on string(v) does not allocate.
	switch string(v) {
	case "ok":
		return codeOK
	case "invalid":
		return codeInvalid
	case "unauthorized":
		return codeUnauthorized
	case "forbidden":
		return codeForbidden
	case "not_found":
		return codeNotFound
	case "conflict":
		return codeConflict
	case "duplicate":
		return codeDuplicate
	case "sold_out":
		return codeSoldOut
	case "not_started":
		return codeNotStarted
	case "ended":
		return codeEnded
	case "rate_limited":
		return codeRateLimited
	case "unavailable":
		return codeUnavailable
	case "internal":
		return codeInternal
	}
	return codeOther
}

// jsonString finds the string value of the first field named key in a flat
// JSON object, tolerating white space around the colon. It returns the raw
// bytes between the quotes (escapes are not decoded: codes and order ids
// never need them). It is a scan, not a parser: good enough for the small
// answers of the buy endpoint and free of allocations.
func jsonString(body []byte, key string) ([]byte, bool) {
	for i := 0; i < len(body); {
		j := bytes.IndexByte(body[i:], '"')
		if j < 0 {
			return nil, false
		}
		start := i + j + 1
		if len(body)-start > len(key) && string(body[start:start+len(key)]) == key && body[start+len(key)] == '"' {
			k := skipSpace(body, start+len(key)+1)
			if k < len(body) && body[k] == ':' {
				k = skipSpace(body, k+1)
				if k < len(body) && body[k] == '"' {
					end := stringEnd(body, k+1)
					if end < 0 {
						return nil, false
					}
					return body[k+1 : end], true
				}
			}
		}
		// Skip to the end of this string so that a value equal to key is
		// never taken for the key itself.
		end := stringEnd(body, start)
		if end < 0 {
			return nil, false
		}
		i = end + 1
	}
	return nil, false
}

// stringEnd returns the index of the quote closing the JSON string whose
// first byte is at start, or -1.
func stringEnd(b []byte, start int) int {
	for i := start; i < len(b); {
		j := bytes.IndexAny(b[i:], `"\`)
		if j < 0 {
			return -1
		}
		if b[i+j] == '"' {
			return i + j
		}
		i += j + 2 // a backslash escapes the next byte
	}
	return -1
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// retryable reports whether an answer means "nothing happened, try again":
// the shopper still has no order and the stock is untouched.
func retryable(c code) bool {
	switch c {
	case codeRateLimited, codeUnavailable, codeTransport, codeInternal, codeNoCode:
		return true
	}
	return false
}
