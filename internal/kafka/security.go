package kafka

import (
	"crypto/tls"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"

	"github.com/flashgate/flashgate/internal/rawnet"
)

// SASL mechanisms flashgate speaks (contract §13), as FLASHGATE_KAFKA_SASL
// names them.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// Security is how every Kafka client of flashgate (producer, consumers, topic
// creation, readiness pings) authenticates and encrypts. The zero value is
// plaintext without authentication.
type Security struct {
	mech sasl.Mechanism
	tls  *tls.Config
}

// NewSecurity builds the Security of a SASL mechanism ("" for none, or one of
// the SASL* constants) with its user and password, and a TLS client config
// (nil: plaintext). The error never contains the password.
func NewSecurity(mechanism, username, password string, tlsConfig *tls.Config) (Security, error) {
	s := Security{tls: tlsConfig}
	var err error
	switch mechanism {
	case "":
	case SASLPlain:
		s.mech = plain.Mechanism{Username: username, Password: password}
	case SASLScramSHA256:
		s.mech, err = scram.Mechanism(scram.SHA256, username, password)
	case SASLScramSHA512:
		s.mech, err = scram.Mechanism(scram.SHA512, username, password)
	default:
		return Security{}, fmt.Errorf("unknown SASL mechanism %q (want %s, %s or %s)", mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
	}
	if err != nil {
		// scram's error may quote what failed SASLprep; do not pass it on.
		return Security{}, fmt.Errorf("%s: username or password is not valid UTF-8 SASLprep text", mechanism)
	}
	return s, nil
}

// dialer returns a connection dialer for admin requests and consumers.
// Connections, here and in transport, go through internal/rawnet (their
// reads and writes leave the runtime's monitor thread asleep); kafka-go
// puts TLS over them.
func (s Security) dialer(timeout time.Duration) *kafkago.Dialer {
	return &kafkago.Dialer{
		Timeout:       timeout,
		DialFunc:      rawnet.DialContext,
		SASLMechanism: s.mech,
		TLS:           s.tls,
	}
}

// transport returns a transport for producers.
func (s Security) transport() *kafkago.Transport {
	return &kafkago.Transport{
		DialTimeout: 5 * time.Second,
		Dial:        rawnet.DialContext,
		SASL:        s.mech,
		TLS:         s.tls,
	}
}
