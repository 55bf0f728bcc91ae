package paysim

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/flashgate/flashgate/internal/alipay"
)

// notifyOK is the only answer that stops the retries.
const notifyOK = "success"

// Pay does what the cashier's Pay button does: the trade of outTradeNo turns
// TRADE_SUCCESS and the signed notify goes to its notify_url. Pay returns once
// the first delivery attempt is over (answered or failed; retries go on in
// the background) or ctx is done. Paying a paid trade again changes nothing
// and sends nothing. It fails with ErrTradeNotExist before the page was
// opened and ErrTradeClosed after a close, a cancel or the timeout.
func (s *Sim) Pay(ctx context.Context, outTradeNo string) error {
	first := make(chan struct{})
	s.mu.Lock()
	t, ok := s.trades[outTradeNo]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("pay %s: %w", outTradeNo, ErrTradeNotExist)
	}
	s.expire(t)
	switch t.status {
	case alipay.TradeClosed:
		s.mu.Unlock()
		return fmt.Errorf("pay %s: %w", outTradeNo, ErrTradeClosed)
	case alipay.TradeSuccess, alipay.TradeFinished:
		s.mu.Unlock()
		return nil
	}
	t.status = alipay.TradeSuccess
	t.paid = s.now()
	sent := s.sendNotify(s.payNotify(t), first)
	s.mu.Unlock()
	if !sent {
		return nil
	}
	select {
	case <-first:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pay %s: %w", outTradeNo, ctx.Err())
	}
}

// Cancel does what the cashier's Cancel button does: the unpaid trade of
// outTradeNo turns TRADE_CLOSED. Cancelling a closed trade again is fine; a
// paid one fails with ErrTradePaid.
func (s *Sim) Cancel(outTradeNo string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.trades[outTradeNo]
	if !ok {
		return fmt.Errorf("cancel %s: %w", outTradeNo, ErrTradeNotExist)
	}
	s.expire(t)
	switch t.status {
	case alipay.TradeWaitBuyerPay:
		t.status = alipay.TradeClosed
		t.closed = s.now()
	case alipay.TradeSuccess, alipay.TradeFinished:
		return fmt.Errorf("cancel %s: %w", outTradeNo, ErrTradePaid)
	}
	return nil
}

// notification is a notify waiting to be signed and sent; notify_time and
// sign are set at each attempt.
type notification struct {
	url    string
	params url.Values
}

// baseNotify holds the fields every notify of t carries. Call with s.mu.
func (s *Sim) baseNotify(t *trade) url.Values {
	total := alipay.FormatAmount(t.totalCents)
	v := url.Values{
		"notify_type":    {"trade_status_sync"},
		"notify_id":      {randomHex(16)},
		"app_id":         {s.cfg.AppID},
		"auth_app_id":    {s.cfg.AppID},
		"charset":        {alipay.Charset},
		"version":        {alipay.Version},
		"sign_type":      {alipay.SignTypeRSA2},
		"trade_no":       {t.tradeNo},
		"out_trade_no":   {t.outTradeNo},
		"trade_status":   {t.status},
		"total_amount":   {total},
		"receipt_amount": {total},
		"invoice_amount": {total},
		// Not all of these matter to flashgate, but a real notify has them
		// and they are all signed.
		"buyer_pay_amount": {total},
		"point_amount":     {"0.00"},
		"buyer_id":         {s.buyerID},
		"seller_id":        {s.cfg.SellerID},
		"subject":          {t.subject},
		"gmt_create":       {beijing(t.created)},
		"gmt_payment":      {beijing(t.paid)},
		"fund_bill_list":   {`[{"amount":"` + total + `","fundChannel":"ALIPAYACCOUNT"}]`},
	}
	return v
}

func (s *Sim) payNotify(t *trade) notification {
	return notification{url: t.notifyURL, params: s.baseNotify(t)}
}

// refundNotify is the notify Alipay sends after a refund: TRADE_CLOSED once
// the whole amount is back, TRADE_SUCCESS with refund_fee before that.
func (s *Sim) refundNotify(t *trade, outRequestNo string, at time.Time) notification {
	v := s.baseNotify(t)
	v.Set("out_biz_no", outRequestNo)
	v.Set("refund_fee", alipay.FormatAmount(t.refundCents))
	v.Set("gmt_refund", at.In(alipay.Beijing()).Format(alipay.TimeLayout+".000"))
	if !t.closed.IsZero() {
		v.Set("gmt_close", beijing(t.closed))
	}
	return notification{url: t.notifyURL, params: v}
}

// sendNotify starts delivering n in the background and reports whether it
// did; first, when not nil, is closed after the first attempt. Nothing is
// sent without a notify_url or after Close. Call with s.mu.
func (s *Sim) sendNotify(n notification, first chan struct{}) bool {
	if n.url == "" || s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.deliver(n, first)
	}()
	return true
}

// deliver POSTs n until it is answered "success" or the backoff runs out.
func (s *Sim) deliver(n notification, first chan struct{}) {
	log := s.log.With("notify_url", n.url, "out_trade_no", n.params.Get("out_trade_no"),
		"trade_status", n.params.Get("trade_status"), "notify_id", n.params.Get("notify_id"))
	for attempt := 0; ; attempt++ {
		err := s.notifyOnce(n)
		if attempt == 0 && first != nil {
			close(first)
		}
		if err == nil {
			log.Info("paysim notify delivered", "attempt", attempt+1)
			return
		}
		if attempt >= len(s.backoff) {
			log.Warn("paysim notify given up", "attempts", attempt+1, "err", err)
			return
		}
		log.Info("paysim notify refused, will retry", "attempt", attempt+1, "in", s.backoff[attempt], "err", err)
		timer := time.NewTimer(s.backoff[attempt])
		select {
		case <-timer.C:
		case <-s.ctx.Done():
			timer.Stop()
			return
		}
	}
}

// notifyOnce makes one attempt, stamped and signed afresh as Alipay does.
func (s *Sim) notifyOnce(n notification) error {
	form := make(url.Values, len(n.params)+2)
	for k, v := range n.params {
		form[k] = v
	}
	form.Set("notify_time", beijing(s.now()))
	sig, err := alipay.SignNotify(form, s.key)
	if err != nil {
		return err
	}
	form.Set("sign", sig)
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, n.url, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("build notify: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("post notify: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return fmt.Errorf("read notify answer: %w", err)
	}
	if resp.StatusCode/100 != 2 || string(body) != notifyOK {
		return fmt.Errorf("notify answered http %d %q, want %q", resp.StatusCode, body, notifyOK)
	}
	return nil
}

// returnURL is where the browser goes after the cashier: return_url with the
// signed synchronous-return parameters. paid adds trade_no and total_amount;
// without them the merchant sees the buyer left unpaid. Empty when the
// merchant gave no return_url. Call with s.mu.
func (s *Sim) returnURL(t *trade) (string, error) {
	if t.returnURL == "" {
		return "", nil
	}
	u, err := url.Parse(t.returnURL)
	if err != nil {
		return "", fmt.Errorf("parse return_url: %w", err)
	}
	method := alipay.MethodPagePayReturn
	if t.wap {
		method = alipay.MethodWapPayReturn
	}
	p := url.Values{
		"method":       {method},
		"app_id":       {s.cfg.AppID},
		"auth_app_id":  {s.cfg.AppID},
		"charset":      {alipay.Charset},
		"version":      {alipay.Version},
		"timestamp":    {beijing(s.now())},
		"seller_id":    {s.cfg.SellerID},
		"out_trade_no": {t.outTradeNo},
	}
	if t.status == alipay.TradeSuccess || t.status == alipay.TradeFinished || t.refundCents > 0 {
		p.Set("trade_no", t.tradeNo)
		p.Set("total_amount", alipay.FormatAmount(t.totalCents))
	}
	sig, err := alipay.SignNotify(p, s.key)
	if err != nil {
		return "", err
	}
	p.Set("sign", sig)
	p.Set("sign_type", alipay.SignTypeRSA2)
	// Like Alipay, append to whatever query return_url has; such merchant
	// parameters are not signed and break the merchant's check, which is why
	// Alipay asks for return URLs without them.
	q := u.Query()
	for k, v := range p {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
