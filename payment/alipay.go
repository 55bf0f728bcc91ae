package payment

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/flashgate/flashgate"
	"github.com/flashgate/flashgate/internal/alipay"
	"github.com/flashgate/flashgate/internal/mysql"
)

// Paths of the Alipay callbacks on the public listener.
const (
	NotifyPath = "/pay/alipay/notify"
	ReturnPath = "/pay/alipay/return"
)

// The answers Alipay expects to a notify: anything but "success" makes it
// send the notify again later.
const (
	notifySuccess = "success"
	notifyFailure = "failure"
)

func (s *Service) alipayOff() error {
	return flashgate.Errorf(flashgate.Unavailable, "the alipay channel is not configured")
}

// PayAlipay hands out the signed alipay.trade.page.pay URL (with wap,
// alipay.trade.wap.pay: the cashier for phones) of an unpaid order of user, recording the trade in payment_info (WAIT_BUYER_PAY). A
// pending order is waited for briefly, then answered conflict. The trade
// times out at Alipay when the order expires here (rounded up to a minute,
// the unit of timeout_express); the sweep closes it before cancelling
// anyway.
func (s *Service) PayAlipay(ctx context.Context, user int64, id string, wap bool) (string, error) {
	if s.pay == nil {
		return "", s.alipayOff()
	}
	o, err := s.order(ctx, user, id, s.cfg.PendingWait)
	if err != nil {
		return "", err
	}
	if o.Status == flashgate.OrderPending {
		return "", errPending(id)
	}
	now := time.Now()
	if o, err = s.db.OpenAlipay(ctx, id, user, s.expiredBefore(now)); err != nil {
		return "", err
	}
	it, err := s.db.Item(ctx, o.ItemID)
	if err != nil {
		return "", err
	}
	p := alipay.PagePay{
		OutTradeNo:  o.ID,
		TotalAmount: o.Amount.String(),
		Subject:     it.Name,
		NotifyURL:   s.cfg.PublicURL + NotifyPath,
		ReturnURL:   s.cfg.PublicURL + ReturnPath,
		Timeout:     o.CreatedAt.Add(s.cfg.OrderTTL).Sub(now),
	}
	var u string
	if wap {
		// A buyer who gives up goes back to the item's page.
		p.QuitURL = s.cfg.PublicURL + "/items/" + strconv.FormatInt(o.ItemID, 10)
		u, err = s.pay.WapPayURL(p)
	} else {
		u, err = s.pay.PagePayURL(p)
	}
	if err != nil {
		return "", fmt.Errorf("pay order %s: %w", id, err)
	}
	return u, nil
}

// Notify handles the body of an asynchronous notify and returns the answer
// for Alipay: "success" when the notify is genuine (signature, app_id) and
// names a known order with its exact amount, whatever it then did, and
// "failure" otherwise, changing nothing. A paying notify turns an unpaid
// order paid once; a replay changes nothing; a payment for a closed order
// is recorded and flagged REFUND_NEEDED. Notifies that report no payment
// (TRADE_CLOSED after a refund, WAIT_BUYER_PAY) are recorded only.
func (s *Service) Notify(ctx context.Context, body []byte) string {
	result := s.applyNotify(ctx, body)
	s.m.notifies.WithLabelValues(result).Inc()
	if result == notifyRefused || result == notifyError {
		return notifyFailure
	}
	return notifySuccess
}

// applyNotify applies a notify and returns its result for the metrics.
func (s *Service) applyNotify(ctx context.Context, body []byte) string {
	if s.pay == nil {
		s.log.Warn("alipay notify refused: the alipay channel is not configured")
		return notifyRefused
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		s.log.Warn("alipay notify refused", "err", err)
		return notifyRefused
	}
	n, err := s.pay.ParseNotify(form)
	if err != nil {
		s.log.Warn("alipay notify refused", "err", err, "out_trade_no", form.Get("out_trade_no"))
		return notifyRefused
	}
	amount, err := flashgate.ParseMoney(n.TotalAmount)
	if err != nil {
		s.log.Warn("alipay notify refused: bad total_amount", "out_trade_no", n.OutTradeNo, "total_amount", n.TotalAmount)
		return notifyRefused
	}
	outcome, o, err := s.db.ApplyPayment(ctx, mysql.ChannelReport{
		OrderID:     n.OutTradeNo,
		Channel:     mysql.ChannelAlipay,
		NotifyID:    n.NotifyID,
		TradeNo:     n.TradeNo,
		TradeStatus: n.TradeStatus,
		Amount:      amount,
		Paid:        n.Paid() && !isRefund(n),
		Content:     string(body),
		At:          time.Now(),
	})
	if err != nil {
		var fe *flashgate.Error
		if errors.As(err, &fe) {
			s.log.Warn("alipay notify refused", "out_trade_no", n.OutTradeNo, "err", err)
			return notifyRefused
		}
		s.log.Error("alipay notify not recorded; alipay will retry", "out_trade_no", n.OutTradeNo, "err", err)
		return notifyError
	}
	s.m.applied(mysql.ChannelAlipay, outcome)
	switch outcome {
	case mysql.OutcomePaid:
		s.changed(ctx, flashgate.OrderPaid, *o)
		return notifyPaid
	case mysql.OutcomeRefundNeeded:
		s.log.Warn("alipay took money for an order that is not unpaid; flagged for refund",
			"order", o.ID, "status", o.Status, "trade_no", n.TradeNo)
		return notifyRefundNeeded
	case mysql.OutcomeReplay:
		return notifyReplay
	}
	return notifyRecorded
}

// isRefund reports whether a notify is about a refund, which may say
// TRADE_SUCCESS (the trade partly refunded) but pays nothing.
func isRefund(n alipay.Notify) bool {
	if n.OutBizNo != "" || n.GmtRefund != "" {
		return true
	}
	cents, err := alipay.ParseAmount(n.RefundFee)
	return err == nil && cents > 0
}

// ReturnView is what the synchronous return shows the buyer.
type ReturnView struct {
	OrderID string
	// Status is the order's status now; the return itself proves nothing
	// about the payment.
	Status flashgate.OrderStatus
	// Left is true when the buyer came back without paying.
	Left bool
}

// Return verifies a synchronous return and reads the order's status. It
// never changes anything: only a notify or a trade query says a trade is
// paid.
func (s *Service) Return(ctx context.Context, query url.Values) (*ReturnView, error) {
	if s.pay == nil {
		return nil, s.alipayOff()
	}
	r, err := s.pay.ParseReturn(query)
	if err != nil {
		s.log.Warn("alipay return refused", "err", err)
		return nil, flashgate.Errorf(flashgate.Invalid, "this return does not come from alipay")
	}
	o, err := s.db.Order(ctx, r.OutTradeNo)
	if err != nil {
		return nil, err
	}
	if o == nil {
		return nil, flashgate.Errorf(flashgate.NotFound, "order not found")
	}
	return &ReturnView{OrderID: o.ID, Status: o.Status, Left: r.TradeNo == ""}, nil
}

// refundAlipay refunds the Alipay payment of a paid order. out_request_no is
// derived from the order, so a retry refunds nothing twice and answers
// fund_change N with the refunded total, which confirms it as well.
func (s *Service) refundAlipay(ctx context.Context, o *flashgate.Order, outRequestNo string, now time.Time) (*flashgate.Order, error) {
	if s.pay == nil {
		return nil, s.alipayOff()
	}
	// Written before Alipay is asked: a refund it confirms that cannot be
	// recorded then is found and recorded by RepairRefunds.
	if err := s.db.RequestRefund(ctx, o.ID, mysql.ChannelAlipay, outRequestNo, now); err != nil {
		s.log.Warn("alipay refund", "order", o.ID, "err", err)
		return nil, flashgate.Errorf(flashgate.Unavailable, "orders unavailable; nothing was refunded; try again")
	}
	cctx, cancel := s.callCtx(ctx)
	defer cancel()
	res, err := s.pay.Refund(cctx, o.ID, o.Amount.String(), outRequestNo)
	if err != nil {
		s.log.Warn("alipay refund", "order", o.ID, "err", err)
		return nil, flashgate.Errorf(flashgate.Unavailable, "alipay did not confirm the refund; try again")
	}
	if !res.FundChange && !covers(res.RefundFee, o.Amount) {
		return nil, flashgate.Errorf(flashgate.Unavailable, "alipay has not confirmed the refund yet; try again")
	}
	done, cur, err := s.db.MarkRefunded(ctx, o.ID, mysql.ChannelAlipay, outRequestNo, res.TradeNo, now)
	if err != nil {
		return nil, err
	}
	if !done && (cur == nil || cur.Status != flashgate.OrderRefunded) {
		return nil, flashgate.Errorf(flashgate.Conflict, "order %s is no longer paid", o.ID)
	}
	return cur, nil
}

// Ages of a pending refund request for RepairRefunds: younger than
// refundRepairAfter it may still be in flight (and is left alone); older
// than refundAbandonAfter, with Alipay saying nothing was refunded, it is
// given up (the shopper was told to try again).
const (
	refundRepairAfter  = 5 * time.Second
	refundAbandonAfter = 5 * time.Minute
)

// RepairRefunds finishes the Alipay refunds that Alipay may have made but
// that were not recorded (MySQL failed after Alipay's answer): for each
// pending request it asks Alipay for the trade, and records the refund when
// the trade is closed by it (the order turns refunded, its unit goes back).
// Run by the workers every tick.
func (s *Service) RepairRefunds(ctx context.Context) error {
	if s.pay == nil {
		return nil
	}
	now := time.Now()
	rs, err := s.db.PendingRefunds(ctx, mysql.ChannelAlipay, now.Add(-refundRepairAfter), 50)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range rs {
		if err := s.repairRefund(ctx, r, now); err != nil {
			errs = append(errs, fmt.Errorf("repair refund %s: %w", r.OutRequestNo, err))
		}
	}
	return errors.Join(errs...)
}

func (s *Service) repairRefund(ctx context.Context, r mysql.RefundRequest, now time.Time) error {
	o, err := s.db.Order(ctx, r.OrderID)
	if err != nil {
		return err
	}
	if o == nil || o.Status != flashgate.OrderPaid {
		state := mysql.RefundAbandoned
		if o != nil && o.Status == flashgate.OrderRefunded {
			state = mysql.RefundDone
		}
		return s.db.SetRefundState(ctx, r.OutRequestNo, state)
	}
	cctx, cancel := s.callCtx(ctx)
	q, err := s.pay.Query(cctx, o.ID)
	cancel()
	if err != nil {
		return err
	}
	if q.TradeStatus != alipay.TradeClosed {
		if now.Sub(r.RequestedAt) > refundAbandonAfter {
			return s.db.SetRefundState(ctx, r.OutRequestNo, mysql.RefundAbandoned)
		}
		return nil
	}
	// A paid trade closes only by its full refund.
	done, cur, err := s.db.MarkRefunded(ctx, o.ID, mysql.ChannelAlipay, r.OutRequestNo, q.TradeNo, now)
	if err != nil {
		return err
	}
	if done {
		s.log.Info("recorded an alipay refund that was confirmed but not recorded", "order", o.ID)
		s.changed(ctx, flashgate.OrderRefunded, *cur)
	}
	return nil
}

// covers reports whether Alipay's refunded total covers amount.
func covers(refundFee string, amount flashgate.Money) bool {
	cents, err := alipay.ParseAmount(refundFee)
	return err == nil && cents >= int64(amount)
}

// expireTrade ends an expired unpaid order that has an Alipay trade: close
// the trade, then cancel; or, if the trade turns out paid, mark it paid.
func (s *Service) expireTrade(ctx context.Context, o *flashgate.Order) error {
	if s.pay == nil {
		return fmt.Errorf("order %s has an alipay trade but the alipay channel is not configured here", o.ID)
	}
	err := s.pay.Close(ctx, o.ID)
	switch {
	case err == nil, alipay.HasSubCode(err, alipay.SubTradeNotExist), alipay.HasSubCode(err, alipay.SubTradeHasClose):
		return s.cancel(ctx, o.ID)
	case alipay.HasSubCode(err, alipay.SubTradeStatusError):
		return s.settleTrade(ctx, o)
	}
	return err
}

// settleTrade asks Alipay for the trade of an order whose close was refused
// and applies the answer: paid, or closed (then the order is cancelled).
func (s *Service) settleTrade(ctx context.Context, o *flashgate.Order) error {
	q, err := s.pay.Query(ctx, o.ID)
	if err != nil {
		return err
	}
	switch q.TradeStatus {
	case alipay.TradeClosed:
		return s.cancel(ctx, o.ID)
	case alipay.TradeSuccess, alipay.TradeFinished:
	default:
		return fmt.Errorf("trade of order %s is %s after a refused close", o.ID, q.TradeStatus)
	}
	amount, err := flashgate.ParseMoney(q.TotalAmount)
	if err != nil {
		return fmt.Errorf("trade of order %s: total_amount %q: %w", o.ID, q.TotalAmount, err)
	}
	raw, _ := json.Marshal(q)
	outcome, cur, err := s.db.ApplyPayment(ctx, mysql.ChannelReport{
		OrderID: o.ID, Channel: mysql.ChannelAlipay, NotifyID: "query", TradeNo: q.TradeNo,
		TradeStatus: q.TradeStatus, Amount: amount, Paid: true, Content: string(raw), At: time.Now(),
	})
	if err != nil {
		return err
	}
	s.m.applied(mysql.ChannelAlipay, outcome)
	if outcome == mysql.OutcomePaid {
		s.changed(ctx, flashgate.OrderPaid, *cur)
	}
	return nil
}

// cancel cancels an order if still unpaid, then announces and restocks it.
func (s *Service) cancel(ctx context.Context, id string) error {
	done, o, err := s.db.CancelUnpaid(ctx, id, time.Now())
	if err != nil {
		return err
	}
	if done {
		s.m.expired.Inc()
		s.changed(ctx, flashgate.OrderCancelled, *o)
	}
	return nil
}

// refundFlagged gives back the Alipay payments flagged REFUND_NEEDED (money
// taken for an order that was cancelled, or paid with points, first).
func (s *Service) refundFlagged(ctx context.Context) error {
	if s.pay == nil {
		return nil
	}
	ps, err := s.db.RefundsNeeded(ctx, mysql.ChannelAlipay, 50)
	if err != nil {
		return err
	}
	var errs []error
	for i := range ps {
		p := &ps[i]
		outRequestNo := p.OrderID + "-A"
		res, err := s.pay.Refund(ctx, p.OrderID, p.Amount.String(), outRequestNo)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !res.FundChange && !covers(res.RefundFee, p.Amount) {
			continue // not confirmed yet: next tick
		}
		if err := s.db.MarkPaymentRefunded(ctx, p, outRequestNo, time.Now()); err != nil {
			errs = append(errs, err)
			continue
		}
		s.m.flaggedRefund.Inc()
		s.log.Info("refunded an alipay payment flagged for refund", "order", p.OrderID, "amount", p.Amount)
	}
	return errors.Join(errs...)
}

// Expire is the expiry sweep, run by the workers every tick: unpaid orders
// older than the TTL are cancelled (after their Alipay trade is closed, see
// the package doc), their units go back to stock and their buyers may buy
// again; then payments flagged REFUND_NEEDED are refunded.
func (s *Service) Expire(ctx context.Context) error {
	now := time.Now()
	cursor := mysql.SweepCursor{CreatedAt: time.Unix(0, 0)}
	var errs []error
	failed := 0    // orders whose trade could not be settled this tick
	for range 50 { // at most 50 batches a tick; the rest waits for the next
		sw, err := s.db.SweepExpired(ctx, s.expiredBefore(now), cursor, s.cfg.Batch, now)
		if err != nil {
			errs = append(errs, err)
			break
		}
		s.m.expired.Add(float64(len(sw.Cancelled)))
		s.changed(ctx, flashgate.OrderCancelled, sw.Cancelled...)
		for i := range sw.Open {
			if err := s.expireTrade(ctx, &sw.Open[i]); err != nil {
				if failed++; failed == 1 {
					errs = append(errs, fmt.Errorf("expire order %s: %w", sw.Open[i].ID, err))
				}
			}
		}
		if sw.Seen < s.cfg.Batch || ctx.Err() != nil {
			break
		}
		cursor = sw.Next
	}
	if failed > 1 {
		errs = append(errs, fmt.Errorf("and %d more expired orders whose alipay trade could not be settled", failed-1))
	}
	if err := s.refundFlagged(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
