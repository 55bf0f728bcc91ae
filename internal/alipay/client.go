package alipay

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Methods and fixed values of the protocol.
const (
	MethodPagePay = "alipay.trade.page.pay"
	// MethodWapPay is mobile-website payment (手机网站支付): the same
	// flow as page pay, with a cashier made for phones.
	MethodWapPay = "alipay.trade.wap.pay"
	MethodQuery  = "alipay.trade.query"
	MethodRefund = "alipay.trade.refund"
	MethodClose  = "alipay.trade.close"
	// MethodPagePayReturn is the method parameter of a synchronous return.
	MethodPagePayReturn = "alipay.trade.page.pay.return"
	// MethodWapPayReturn is the method parameter of a wap pay's return.
	MethodWapPayReturn = "alipay.trade.wap.pay.return"

	// ProductCodePagePay is the product_code of computer-website payment.
	ProductCodePagePay = "FAST_INSTANT_TRADE_PAY"
	// ProductCodeWapPay is the product_code of mobile-website payment.
	ProductCodeWapPay = "QUICK_WAP_WAY"
	// SignTypeRSA2 is the only sign_type this package speaks.
	SignTypeRSA2 = "RSA2"
	// Charset is the only charset this package speaks.
	Charset = "utf-8"
	// Version is the protocol version of every request.
	Version = "1.0"
	// TimeLayout is how Alipay writes timestamp, notify_time, gmt_payment...
	TimeLayout = "2006-01-02 15:04:05"
)

// Trade statuses as Alipay reports them in notifies and query answers.
const (
	TradeWaitBuyerPay = "WAIT_BUYER_PAY"
	TradeClosed       = "TRADE_CLOSED"
	TradeSuccess      = "TRADE_SUCCESS"
	TradeFinished     = "TRADE_FINISHED"
)

// maxResponse bounds how much of a gateway answer is read.
const maxResponse = 1 << 20

// Beijing is the zone of Alipay's timestamps (China has no daylight saving, so
// a fixed +08:00 zone needs no tzdata).
func Beijing() *time.Location { return time.FixedZone("CST", 8*60*60) }

// Config is what the merchant holds from Alipay's open platform console.
type Config struct {
	// Gateway is the gateway URL, https://openapi.alipay.com/gateway.do in
	// production, the sandbox's /gateway.do in dev.
	Gateway string
	// AppID identifies the merchant application; notifies for other apps are
	// refused.
	AppID string
	// PrivateKey is the merchant's application private key (RSA2).
	PrivateKey *rsa.PrivateKey
	// AlipayPublicKey is Alipay's public key, which checks every notify,
	// return and API answer.
	AlipayPublicKey *rsa.PublicKey
}

// Client calls Alipay and checks what comes back. It is safe for concurrent
// use.
type Client struct {
	cfg  Config
	http *http.Client
	now  func() time.Time
}

// New returns a Client for cfg that sends its API calls with httpClient
// (http.DefaultClient when nil; give it a timeout).
func New(cfg Config, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{cfg: cfg, http: httpClient, now: time.Now}
}

// AppID returns the application id the Client signs for.
func (c *Client) AppID() string { return c.cfg.AppID }

// PagePay describes one computer-website payment.
type PagePay struct {
	// OutTradeNo is the merchant's order number, unique per payment.
	OutTradeNo string
	// TotalAmount is in yuan with at most two decimals, e.g. "19.90".
	TotalAmount string
	// Subject is the title the buyer sees.
	Subject string
	// NotifyURL receives the asynchronous notify (form POST).
	NotifyURL string
	// ReturnURL is where the buyer's browser goes back after paying.
	ReturnURL string
	// Timeout, when positive, is how long the buyer has to pay, sent as
	// timeout_express in whole minutes (rounded up, at least one).
	Timeout time.Duration
	// QuitURL is where a wap cashier sends a buyer who gives up (wap pay
	// only; page pay has no such parameter).
	QuitURL string
}

type pagePayBiz struct {
	OutTradeNo     string `json:"out_trade_no"`
	TotalAmount    string `json:"total_amount"`
	Subject        string `json:"subject"`
	ProductCode    string `json:"product_code"`
	TimeoutExpress string `json:"timeout_express,omitempty"`
	QuitURL        string `json:"quit_url,omitempty"`
}

// PagePayURL returns the signed alipay.trade.page.pay URL to send the buyer's
// browser to. It does no I/O.
func (c *Client) PagePayURL(p PagePay) (string, error) {
	p.QuitURL = ""
	return c.payURL(MethodPagePay, ProductCodePagePay, p)
}

// WapPayURL returns the signed alipay.trade.wap.pay URL, mobile-website
// payment: what a phone's browser is sent to. It does no I/O.
func (c *Client) WapPayURL(p PagePay) (string, error) {
	return c.payURL(MethodWapPay, ProductCodeWapPay, p)
}

// payURL builds the URL of a cashier method (page or wap pay).
func (c *Client) payURL(method, productCode string, p PagePay) (string, error) {
	what := "page pay"
	if method == MethodWapPay {
		what = "wap pay"
	}
	if p.OutTradeNo == "" || p.Subject == "" {
		return "", fmt.Errorf("%s: out_trade_no and subject are required", what)
	}
	if _, err := ParseAmount(p.TotalAmount); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	biz := pagePayBiz{
		OutTradeNo:  p.OutTradeNo,
		TotalAmount: p.TotalAmount,
		Subject:     p.Subject,
		ProductCode: productCode,
		QuitURL:     p.QuitURL,
	}
	if p.Timeout > 0 {
		minutes := (p.Timeout + time.Minute - 1) / time.Minute
		biz.TimeoutExpress = fmt.Sprintf("%dm", minutes)
	}
	params, err := c.request(method, biz)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if p.NotifyURL != "" {
		params.Set("notify_url", p.NotifyURL)
	}
	if p.ReturnURL != "" {
		params.Set("return_url", p.ReturnURL)
	}
	if err := c.sign(params); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	sep := "?"
	if strings.Contains(c.cfg.Gateway, "?") {
		sep = "&"
	}
	return c.cfg.Gateway + sep + params.Encode(), nil
}

// request builds the common parameters of method with biz as biz_content,
// unsigned.
func (c *Client) request(method string, biz any) (url.Values, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(biz); err != nil {
		return nil, fmt.Errorf("encode biz_content: %w", err)
	}
	return url.Values{
		"app_id":      {c.cfg.AppID},
		"method":      {method},
		"format":      {"JSON"},
		"charset":     {Charset},
		"sign_type":   {SignTypeRSA2},
		"timestamp":   {c.now().In(Beijing()).Format(TimeLayout)},
		"version":     {Version},
		"biz_content": {strings.TrimSuffix(buf.String(), "\n")},
	}, nil
}

func (c *Client) sign(params url.Values) error {
	sig, err := Sign(params, c.cfg.PrivateKey)
	if err != nil {
		return err
	}
	params.Set("sign", sig)
	return nil
}

// call POSTs method with biz to the gateway and decodes the verified response
// node into out. A code other than 10000 comes back as *APIError.
func (c *Client) call(ctx context.Context, method string, biz, out any) error {
	params, err := c.request(method, biz)
	if err != nil {
		return err
	}
	if err := c.sign(params); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.Gateway, strings.NewReader(params.Encode()))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("post gateway: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return fmt.Errorf("read response: %w", err)
	}
	if len(body) > maxResponse {
		return fmt.Errorf("%w: response larger than %d bytes", ErrMalformed, maxResponse)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("gateway answered http %d", resp.StatusCode)
	}
	node, err := openResponse(body, method, c.cfg.AlipayPublicKey)
	if err != nil {
		return err
	}
	var head APIError
	if err := json.Unmarshal(node, &head); err != nil {
		return fmt.Errorf("%w: response node: %v", ErrMalformed, err)
	}
	switch head.Code {
	case CodeSuccess:
	case "":
		return fmt.Errorf("%w: response node has no code", ErrMalformed)
	default:
		return &head
	}
	if err := json.Unmarshal(node, out); err != nil {
		return fmt.Errorf("%w: response node: %v", ErrMalformed, err)
	}
	return nil
}

// ResponseNode is the name of method's node in an API answer:
// alipay.trade.query answers in "alipay_trade_query_response".
func ResponseNode(method string) string {
	return strings.ReplaceAll(method, ".", "_") + "_response"
}

// openResponse cuts the response node of method (or the gateway's
// "error_response") out of body and checks Alipay's signature over its exact
// bytes. As Alipay's own SDKs do, an unsigned answer is accepted only when it
// reports a failure: the gateway does not sign some of its early errors (bad
// signature, unknown app).
func openResponse(body []byte, method string, pub *rsa.PublicKey) (json.RawMessage, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, fmt.Errorf("%w: response is not a JSON object", ErrMalformed)
	}
	node, ok := top[ResponseNode(method)]
	if !ok {
		node, ok = top["error_response"]
	}
	if !ok || len(node) == 0 || node[0] != '{' {
		return nil, fmt.Errorf("%w: no %s object in response", ErrMalformed, ResponseNode(method))
	}
	var sig string
	if raw, ok := top["sign"]; ok {
		if err := json.Unmarshal(raw, &sig); err != nil {
			return nil, fmt.Errorf("%w: sign is not a string", ErrMalformed)
		}
	}
	if sig == "" {
		var head struct {
			Code string `json:"code"`
		}
		if err := json.Unmarshal(node, &head); err != nil || head.Code == CodeSuccess {
			return nil, fmt.Errorf("%w: unsigned response", ErrBadSignature)
		}
		return node, nil
	}
	err := VerifyContent(node, sig, pub)
	if err != nil && bytes.Contains(node, []byte(`\/`)) {
		// Alipay signs before its JSON writer escapes "/"; its SDKs retry
		// with the escapes undone, and so do we.
		err = VerifyContent(bytes.ReplaceAll(node, []byte(`\/`), []byte(`/`)), sig, pub)
	}
	if err != nil {
		return nil, fmt.Errorf("response of %s: %w", method, err)
	}
	return node, nil
}
