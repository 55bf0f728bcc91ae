package alipay

import (
	"context"
	"errors"
	"fmt"
)

// Gateway codes (the code field of every answer).
const (
	CodeSuccess      = "10000"
	CodeUnavailable  = "20000" // service currently unavailable: retry
	CodeMissingArgs  = "40001"
	CodeInvalidArgs  = "40002"
	CodeBusinessFail = "40004"
)

// Business sub-codes callers act on.
const (
	SubTradeNotExist     = "ACQ.TRADE_NOT_EXIST"
	SubTradeStatusError  = "ACQ.TRADE_STATUS_ERROR"
	SubTradeHasClose     = "ACQ.TRADE_HAS_CLOSE"
	SubRefundAmountError = "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
	SubDiscordantRepeat  = "ACQ.DISCORDANT_REPEAT_REQUEST"
	SubSystemError       = "ACQ.SYSTEM_ERROR"
	SubInvalidSignature  = "isv.invalid-signature"
	SubInvalidAppID      = "isv.invalid-app-id"
)

// APIError is a gateway answer whose code is not 10000.
type APIError struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	SubCode string `json:"sub_code"`
	SubMsg  string `json:"sub_msg"`
}

// Error renders the codes the way Alipay's console and docs show them.
func (e *APIError) Error() string {
	s := "alipay: " + e.Code + " " + e.Msg
	if e.SubCode != "" {
		s += ": " + e.SubCode
	}
	if e.SubMsg != "" {
		s += " (" + e.SubMsg + ")"
	}
	return s
}

// HasSubCode reports whether err is, or wraps, an *APIError with sub_code sub,
// e.g. HasSubCode(err, SubTradeNotExist) for a trade Alipay never saw.
func HasSubCode(err error, sub string) bool {
	var e *APIError
	return errors.As(err, &e) && e.SubCode == sub
}

// TradeQuery is the answer of alipay.trade.query.
type TradeQuery struct {
	TradeNo        string `json:"trade_no"`
	OutTradeNo     string `json:"out_trade_no"`
	TradeStatus    string `json:"trade_status"`
	TotalAmount    string `json:"total_amount"`
	ReceiptAmount  string `json:"receipt_amount"`
	BuyerPayAmount string `json:"buyer_pay_amount"`
	BuyerUserID    string `json:"buyer_user_id"`
	BuyerLogonID   string `json:"buyer_logon_id"`
	// SendPayDate is when the buyer paid, in TimeLayout, Beijing time.
	SendPayDate string `json:"send_pay_date"`
}

// Query asks Alipay for the state of the trade of outTradeNo. A trade Alipay
// has not seen fails with an *APIError whose SubCode is SubTradeNotExist.
func (c *Client) Query(ctx context.Context, outTradeNo string) (TradeQuery, error) {
	var q TradeQuery
	biz := struct {
		OutTradeNo string `json:"out_trade_no"`
	}{outTradeNo}
	if err := c.call(ctx, MethodQuery, biz, &q); err != nil {
		return TradeQuery{}, fmt.Errorf("query trade %s: %w", outTradeNo, err)
	}
	return q, nil
}

// RefundResult is the answer of alipay.trade.refund.
type RefundResult struct {
	// FundChange is true when this call moved money; a repeat of an
	// out_request_no already refunded answers false. Alipay asks merchants to
	// treat a false FundChange on a first call as "not yet refunded".
	FundChange bool
	TradeNo    string
	OutTradeNo string
	// RefundFee is the total refunded on the trade so far, in yuan.
	RefundFee string
	// GmtRefundPay is when the refund was paid out, when Alipay says.
	GmtRefundPay string
}

// Refund refunds amount (yuan) of the trade of outTradeNo. outRequestNo makes
// the call idempotent: repeating it with the same value refunds nothing more
// and answers FundChange false. It may be empty for a single full refund.
func (c *Client) Refund(ctx context.Context, outTradeNo, amount, outRequestNo string) (RefundResult, error) {
	if _, err := ParseAmount(amount); err != nil {
		return RefundResult{}, fmt.Errorf("refund trade %s: %w", outTradeNo, err)
	}
	biz := struct {
		OutTradeNo   string `json:"out_trade_no"`
		RefundAmount string `json:"refund_amount"`
		OutRequestNo string `json:"out_request_no,omitempty"`
	}{outTradeNo, amount, outRequestNo}
	var r struct {
		TradeNo      string `json:"trade_no"`
		OutTradeNo   string `json:"out_trade_no"`
		FundChange   string `json:"fund_change"`
		RefundFee    string `json:"refund_fee"`
		GmtRefundPay string `json:"gmt_refund_pay"`
	}
	if err := c.call(ctx, MethodRefund, biz, &r); err != nil {
		return RefundResult{}, fmt.Errorf("refund trade %s: %w", outTradeNo, err)
	}
	return RefundResult{
		FundChange:   r.FundChange == "Y",
		TradeNo:      r.TradeNo,
		OutTradeNo:   r.OutTradeNo,
		RefundFee:    r.RefundFee,
		GmtRefundPay: r.GmtRefundPay,
	}, nil
}

// Close closes the unpaid trade of outTradeNo so it can no longer be paid. A
// trade Alipay never saw (the buyer never opened the page) fails with
// SubTradeNotExist, a paid one with SubTradeStatusError.
func (c *Client) Close(ctx context.Context, outTradeNo string) error {
	biz := struct {
		OutTradeNo string `json:"out_trade_no"`
	}{outTradeNo}
	var r struct {
		TradeNo string `json:"trade_no"`
	}
	if err := c.call(ctx, MethodClose, biz, &r); err != nil {
		return fmt.Errorf("close trade %s: %w", outTradeNo, err)
	}
	return nil
}
