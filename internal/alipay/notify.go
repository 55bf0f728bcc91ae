package alipay

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Errors of the checks on what Alipay sends. They come wrapped; test with
// errors.Is.
var (
	// ErrBadSignature: the sign is missing, undecodable or does not match
	// Alipay's public key. The message is not from Alipay.
	ErrBadSignature = errors.New("alipay: bad signature")
	// ErrWrongApp: genuinely signed, but for another app_id.
	ErrWrongApp = errors.New("alipay: app_id is not ours")
	// ErrMalformed: repeated or missing fields, an unsupported sign_type or
	// charset, or an answer that is not the JSON Alipay writes.
	ErrMalformed = errors.New("alipay: malformed message")
)

// Notify is a verified asynchronous notify ("异步通知"). Amounts are kept as
// Alipay wrote them; compare them with AmountEqual.
type Notify struct {
	NotifyID      string
	NotifyTime    string
	NotifyType    string
	AppID         string
	SellerID      string
	TradeNo       string
	OutTradeNo    string
	TradeStatus   string
	TotalAmount   string
	ReceiptAmount string
	BuyerID       string
	Subject       string
	GmtPayment    string
	// RefundFee, OutBizNo and GmtRefund are set on the notify of a refund.
	RefundFee string
	OutBizNo  string
	GmtRefund string
	// Raw is the whole form, encoded, as callback_content to keep.
	Raw string
}

// Paid reports whether the notify says the buyer has paid.
func (n Notify) Paid() bool {
	return n.TradeStatus == TradeSuccess || n.TradeStatus == TradeFinished
}

// ParseNotify checks an asynchronous notify (the POSTed form) and returns its
// fields: the RSA2 signature over the sorted parameters without sign and
// sign_type with Alipay's public key (ErrBadSignature), then that app_id is
// ours (ErrWrongApp). It does not know the order: the caller must still check
// OutTradeNo and TotalAmount against it, then answer "success" or "failure".
func (c *Client) ParseNotify(form url.Values) (Notify, error) {
	if err := c.check(form, "notify_id", "out_trade_no", "trade_status", "total_amount"); err != nil {
		return Notify{}, fmt.Errorf("parse notify: %w", err)
	}
	return Notify{
		NotifyID:      form.Get("notify_id"),
		NotifyTime:    form.Get("notify_time"),
		NotifyType:    form.Get("notify_type"),
		AppID:         form.Get("app_id"),
		SellerID:      form.Get("seller_id"),
		TradeNo:       form.Get("trade_no"),
		OutTradeNo:    form.Get("out_trade_no"),
		TradeStatus:   form.Get("trade_status"),
		TotalAmount:   form.Get("total_amount"),
		ReceiptAmount: form.Get("receipt_amount"),
		BuyerID:       form.Get("buyer_id"),
		Subject:       form.Get("subject"),
		GmtPayment:    form.Get("gmt_payment"),
		RefundFee:     form.Get("refund_fee"),
		OutBizNo:      form.Get("out_biz_no"),
		GmtRefund:     form.Get("gmt_refund"),
		Raw:           form.Encode(),
	}, nil
}

// Return is a verified synchronous return: the query string Alipay puts on
// return_url when it sends the buyer back. It proves who sent the buyer, not
// that the trade is paid: only a notify or Query says that.
type Return struct {
	AppID       string
	SellerID    string
	OutTradeNo  string
	TradeNo     string
	TotalAmount string
	Timestamp   string
	Raw         string
}

// ParseReturn checks a synchronous return like ParseNotify checks a notify
// (signature without sign and sign_type, then app_id). TradeNo and
// TotalAmount are empty when the buyer left without paying, which only the
// dev sandbox reports.
func (c *Client) ParseReturn(query url.Values) (Return, error) {
	if err := c.check(query, "out_trade_no"); err != nil {
		return Return{}, fmt.Errorf("parse return: %w", err)
	}
	return Return{
		AppID:       query.Get("app_id"),
		SellerID:    query.Get("seller_id"),
		OutTradeNo:  query.Get("out_trade_no"),
		TradeNo:     query.Get("trade_no"),
		TotalAmount: query.Get("total_amount"),
		Timestamp:   query.Get("timestamp"),
		Raw:         query.Encode(),
	}, nil
}

// check runs the checks shared by notify and return, in the order that makes
// each error mean one thing: shape, signature, app_id, then required fields.
func (c *Client) check(form url.Values, required ...string) error {
	for k, v := range form {
		if len(v) > 1 {
			// The signature covers only the first value; a second one is
			// either a bug or an attempt to smuggle a field past it.
			return fmt.Errorf("%w: %s given %d times", ErrMalformed, k, len(v))
		}
	}
	if st := form.Get("sign_type"); st != "" && st != SignTypeRSA2 {
		return fmt.Errorf("%w: sign_type %q, want RSA2", ErrMalformed, st)
	}
	if cs := form.Get("charset"); cs != "" && !strings.EqualFold(cs, Charset) {
		return fmt.Errorf("%w: charset %q, want utf-8", ErrMalformed, cs)
	}
	if err := Verify(form, c.cfg.AlipayPublicKey); err != nil {
		return err
	}
	if app := form.Get("app_id"); app != c.cfg.AppID {
		return fmt.Errorf("%w: %q", ErrWrongApp, app)
	}
	for _, k := range required {
		if form.Get(k) == "" {
			return fmt.Errorf("%w: no %s", ErrMalformed, k)
		}
	}
	return nil
}
