package payment

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashgate/flashgate/internal/mysql"
)

// Results of an Alipay notify in flashgate_payment_notifies_total.
const (
	notifyPaid         = "paid"          // genuine; the order turned paid
	notifyReplay       = "replay"        // genuine; applied before, nothing changed
	notifyRecorded     = "recorded"      // genuine; reports no payment, recorded only
	notifyRefundNeeded = "refund_needed" // genuine; money taken for a closed order, flagged
	notifyRefused      = "refused"       // not genuine, or names no known order or amount: "failure"
	notifyError        = "error"         // genuine, but not recorded (MySQL): "failure", Alipay retries
)

// metrics counts what happens to orders after the buy. Every series is
// created at 0 up front, so that alerts on increase() see the first event.
type metrics struct {
	notifies      *prometheus.CounterVec
	paid          *prometheus.CounterVec
	refunds       *prometheus.CounterVec
	expired       prometheus.Counter
	refundNeeded  prometheus.Counter
	flaggedRefund prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		notifies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashgate_payment_notifies_total",
			Help: "Alipay asynchronous notifies, by result: paid, replay, recorded and refund_needed were accepted (answered success); refused and error were answered failure.",
		}, []string{"result"}),
		paid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashgate_payment_paid_total", Help: "Orders that turned paid, by channel.",
		}, []string{"channel"}),
		refunds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flashgate_payment_refunds_total", Help: "Paid orders refunded at their owner's request, by channel.",
		}, []string{"channel"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashgate_payment_expired_total", Help: "Unpaid orders cancelled because FLASHGATE_ORDER_TTL passed (their units go back to stock).",
		}),
		refundNeeded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashgate_payment_refund_needed_total", Help: "Payments taken for an order that was no longer unpaid, flagged REFUND_NEEDED.",
		}),
		flaggedRefund: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flashgate_payment_flagged_refunded_total", Help: "Payments flagged REFUND_NEEDED that the sweep gave back.",
		}),
	}
	for _, r := range []string{notifyPaid, notifyReplay, notifyRecorded, notifyRefundNeeded, notifyRefused, notifyError} {
		m.notifies.WithLabelValues(r)
	}
	for _, c := range []string{mysql.ChannelAlipay, mysql.ChannelPoints} {
		m.paid.WithLabelValues(c)
		m.refunds.WithLabelValues(c)
	}
	if reg != nil {
		reg.MustRegister(m.notifies, m.paid, m.refunds, m.expired, m.refundNeeded, m.flaggedRefund)
	}
	return m
}

// applied counts the outcome of a channel's report that was recorded.
func (m *metrics) applied(channel string, o mysql.Outcome) {
	switch o {
	case mysql.OutcomePaid:
		m.paid.WithLabelValues(channel).Inc()
	case mysql.OutcomeRefundNeeded:
		m.refundNeeded.Inc()
	}
}
