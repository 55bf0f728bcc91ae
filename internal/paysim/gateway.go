package paysim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/flashgate/flashgate/internal/alipay"
)

// maxForm bounds a request body.
const maxForm = 1 << 20

// codeMsg words a gateway code as Alipay does.
func codeMsg(code string) string {
	switch code {
	case alipay.CodeSuccess:
		return "Success"
	case alipay.CodeUnavailable:
		return "Service Currently Unavailable"
	case alipay.CodeMissingArgs:
		return "Missing Required Arguments"
	case alipay.CodeInvalidArgs:
		return "Invalid Arguments"
	default:
		return "Business Failed"
	}
}

// head is the part every response node starts with.
type head struct {
	Code    string `json:"code"`
	Msg     string `json:"msg"`
	SubCode string `json:"sub_code,omitempty"`
	SubMsg  string `json:"sub_msg,omitempty"`
}

// failure is an answer other than 10000. Gateway-level failures (bad
// signature, unknown app...) go out unsigned, as Alipay sends them.
type failure struct {
	head
	signed bool
}

func fail(code, sub, subMsg string) *failure {
	return &failure{head: head{Code: code, Msg: codeMsg(code), SubCode: sub, SubMsg: subMsg}}
}

func bizFail(sub, subMsg string) *failure {
	f := fail(alipay.CodeBusinessFail, sub, subMsg)
	f.signed = true
	return f
}

// success is the head of every answer that worked.
func success() head { return head{Code: alipay.CodeSuccess, Msg: codeMsg(alipay.CodeSuccess)} }

func (s *Sim) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(GatewayPath, s.gateway)
	mux.HandleFunc("POST /sim/pay", s.simPay)
	mux.HandleFunc("POST /sim/cancel", s.simCancel)
	mux.HandleFunc("GET /{$}", s.index)
	return mux
}

// gateway is /gateway.do: it checks the common parameters and the merchant's
// signature, then runs the method.
func (s *Sim) gateway(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		s.answer(w, "", fail(alipay.CodeInvalidArgs, "isv.invalid-parameter", "请求参数无法解析: "+err.Error()))
		return
	}
	params := r.Form
	method := params.Get("method")
	if method == alipay.MethodPagePay || method == alipay.MethodWapPay {
		s.pagePay(w, params)
		return
	}
	if f := s.checkRequest(params); f != nil {
		s.answer(w, method, f)
		return
	}
	var biz map[string]any
	if err := json.Unmarshal([]byte(params.Get("biz_content")), &biz); err != nil {
		s.answer(w, method, fail(alipay.CodeInvalidArgs, "isv.invalid-parameter", "biz_content 不是合法的 JSON"))
		return
	}
	str := func(k string) string {
		v, _ := biz[k].(string)
		return v
	}
	switch method {
	case alipay.MethodQuery:
		s.answerOr(w, method)(s.query(str("out_trade_no"), str("trade_no")))
	case alipay.MethodRefund:
		s.answerOr(w, method)(s.refund(str("out_trade_no"), str("trade_no"), str("refund_amount"), str("out_request_no")))
	case alipay.MethodClose:
		s.answerOr(w, method)(s.closeTrade(str("out_trade_no"), str("trade_no")))
	}
}

// checkRequest runs the gateway's checks on a merchant request.
func (s *Sim) checkRequest(params url.Values) *failure {
	switch method := params.Get("method"); method {
	case "":
		return fail(alipay.CodeMissingArgs, "isv.missing-method", "缺少方法名参数")
	case alipay.MethodPagePay, alipay.MethodWapPay, alipay.MethodQuery, alipay.MethodRefund, alipay.MethodClose:
	default:
		return fail(alipay.CodeInvalidArgs, "isv.invalid-method", "不存在的方法名: "+method)
	}
	switch app := params.Get("app_id"); app {
	case "":
		return fail(alipay.CodeMissingArgs, "isv.missing-app-id", "缺少AppID参数")
	case s.cfg.AppID:
	default:
		return fail(alipay.CodeInvalidArgs, alipay.SubInvalidAppID, "无效的AppID参数: "+app)
	}
	if params.Get("sign") == "" {
		return fail(alipay.CodeMissingArgs, "isv.missing-signature", "缺少签名参数")
	}
	if st := params.Get("sign_type"); st != alipay.SignTypeRSA2 {
		return fail(alipay.CodeInvalidArgs, "isv.invalid-signature-type", "无效的签名类型: "+st+"，沙箱只支持 RSA2")
	}
	if cs := params.Get("charset"); cs != "" && !strings.EqualFold(cs, alipay.Charset) {
		return fail(alipay.CodeInvalidArgs, "isv.invalid-charset", "沙箱只支持 utf-8")
	}
	if params.Get("timestamp") == "" {
		return fail(alipay.CodeMissingArgs, "isv.missing-timestamp", "缺少时间戳参数")
	}
	if _, err := time.Parse(alipay.TimeLayout, params.Get("timestamp")); err != nil {
		return fail(alipay.CodeInvalidArgs, "isv.invalid-timestamp", "非法的时间戳参数")
	}
	if err := alipay.VerifyRequest(params, s.cfg.MerchantPublicKey); err != nil {
		return fail(alipay.CodeInvalidArgs, alipay.SubInvalidSignature,
			"验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为："+
				alipay.CanonicalString(params, "sign"))
	}
	return nil
}

// answerOr returns a function writing a method's outcome: its node, or the
// failure.
func (s *Sim) answerOr(w http.ResponseWriter, method string) func(any, *failure) {
	return func(node any, f *failure) {
		if f != nil {
			s.answer(w, method, f)
			return
		}
		s.answer(w, method, node)
	}
}

// answer writes {"<method>_response":node,"sign":"..."} like the gateway:
// the signature is over exactly the node bytes written. A request without a
// known method answers in "error_response".
func (s *Sim) answer(w http.ResponseWriter, method string, node any) {
	signed := true
	if f, ok := node.(*failure); ok {
		signed = f.signed
		node = f.head
	}
	name := "error_response"
	switch method {
	case alipay.MethodQuery, alipay.MethodRefund, alipay.MethodClose:
		name = alipay.ResponseNode(method)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(node); err != nil {
		http.Error(w, "encode answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	body := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	out := `{"` + name + `":` + string(body)
	if signed {
		sig, err := alipay.SignContent(body, s.key)
		if err != nil {
			http.Error(w, "sign answer: "+err.Error(), http.StatusInternalServerError)
			return
		}
		out += `,"sign":"` + sig + `"`
	}
	out += "}"
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	_, _ = w.Write([]byte(out))
}

// find returns the trade named by out_trade_no or, failing that, trade_no,
// expired if its time is up. Call with s.mu.
func (s *Sim) find(outTradeNo, tradeNo string) (*trade, *failure) {
	if outTradeNo == "" && tradeNo == "" {
		return nil, fail(alipay.CodeMissingArgs, "isv.missing-parameter", "out_trade_no 和 trade_no 不能同时为空")
	}
	t, ok := s.trades[outTradeNo]
	if !ok && tradeNo != "" {
		for _, c := range s.trades {
			if c.tradeNo == tradeNo {
				t, ok = c, true
				break
			}
		}
	}
	if !ok || (tradeNo != "" && t.tradeNo != tradeNo) {
		return nil, bizFail(alipay.SubTradeNotExist, "交易不存在")
	}
	s.expire(t)
	return t, nil
}

type queryNode struct {
	head
	TradeNo        string `json:"trade_no"`
	OutTradeNo     string `json:"out_trade_no"`
	BuyerLogonID   string `json:"buyer_logon_id,omitempty"`
	TradeStatus    string `json:"trade_status"`
	TotalAmount    string `json:"total_amount"`
	BuyerPayAmount string `json:"buyer_pay_amount,omitempty"`
	ReceiptAmount  string `json:"receipt_amount,omitempty"`
	SendPayDate    string `json:"send_pay_date,omitempty"`
	BuyerUserID    string `json:"buyer_user_id,omitempty"`
}

func (s *Sim) query(outTradeNo, tradeNo string) (any, *failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, f := s.find(outTradeNo, tradeNo)
	if f != nil {
		return nil, f
	}
	n := queryNode{
		head:        success(),
		TradeNo:     t.tradeNo,
		OutTradeNo:  t.outTradeNo,
		TradeStatus: t.status,
		TotalAmount: alipay.FormatAmount(t.totalCents),
	}
	if !t.paid.IsZero() {
		n.BuyerLogonID = "sim***@example.com"
		n.BuyerUserID = s.buyerID
		n.BuyerPayAmount = n.TotalAmount
		n.ReceiptAmount = n.TotalAmount
		n.SendPayDate = beijing(t.paid)
	}
	return n, nil
}

type refundNode struct {
	head
	TradeNo      string `json:"trade_no"`
	OutTradeNo   string `json:"out_trade_no"`
	BuyerLogonID string `json:"buyer_logon_id"`
	FundChange   string `json:"fund_change"`
	RefundFee    string `json:"refund_fee"`
	GmtRefundPay string `json:"gmt_refund_pay"`
	BuyerUserID  string `json:"buyer_user_id"`
}

// refund refunds amount once per outRequestNo (out_trade_no when empty, as
// Alipay treats a refund without one). A repeat answers fund_change N.
func (s *Sim) refund(outTradeNo, tradeNo, amount, outRequestNo string) (any, *failure) {
	cents, err := alipay.ParseAmount(amount)
	if err != nil || cents <= 0 {
		return nil, bizFail("ACQ.INVALID_PARAMETER", "refund_amount 无效: "+amount)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, f := s.find(outTradeNo, tradeNo)
	if f != nil {
		return nil, f
	}
	if outRequestNo == "" {
		outRequestNo = t.outTradeNo
	}
	node := func(fundChange string, at time.Time) refundNode {
		return refundNode{
			head:         success(),
			TradeNo:      t.tradeNo,
			OutTradeNo:   t.outTradeNo,
			BuyerLogonID: "sim***@example.com",
			FundChange:   fundChange,
			RefundFee:    alipay.FormatAmount(t.refundCents),
			GmtRefundPay: beijing(at),
			BuyerUserID:  s.buyerID,
		}
	}
	if r, ok := t.refunds[outRequestNo]; ok {
		if r.cents != cents {
			return nil, bizFail(alipay.SubDiscordantRepeat, "同一 out_request_no 的退款金额不一致")
		}
		return node("N", r.at), nil
	}
	if t.paid.IsZero() || t.status == alipay.TradeWaitBuyerPay {
		return nil, bizFail(alipay.SubTradeStatusError, "交易状态非法: "+t.status)
	}
	if t.status == alipay.TradeClosed {
		return nil, bizFail(alipay.SubTradeStatusError, "交易已关闭（已全额退款）")
	}
	if cents > t.totalCents-t.refundCents {
		return nil, bizFail(alipay.SubRefundAmountError, "退款金额超限")
	}
	now := s.now()
	if t.refunds == nil {
		t.refunds = make(map[string]refund)
	}
	t.refunds[outRequestNo] = refund{cents: cents, at: now}
	t.refundCents += cents
	if t.refundCents == t.totalCents {
		t.status = alipay.TradeClosed
		t.closed = now
	}
	s.sendNotify(s.refundNotify(t, outRequestNo, now), nil)
	return node("Y", now), nil
}

type closeNode struct {
	head
	TradeNo    string `json:"trade_no"`
	OutTradeNo string `json:"out_trade_no"`
}

// closeTrade closes an unpaid trade; closing a closed one again succeeds.
func (s *Sim) closeTrade(outTradeNo, tradeNo string) (any, *failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, f := s.find(outTradeNo, tradeNo)
	if f != nil {
		return nil, f
	}
	switch t.status {
	case alipay.TradeWaitBuyerPay:
		t.status = alipay.TradeClosed
		t.closed = s.now()
	case alipay.TradeClosed:
	default:
		return nil, bizFail(alipay.SubTradeStatusError, "交易状态不合法，已支付的交易不能关闭: "+t.status)
	}
	return closeNode{head: success(), TradeNo: t.tradeNo, OutTradeNo: t.outTradeNo}, nil
}

// pagePay opens the cashier page, creating the trade on first sight. It
// serves page pay (电脑网站支付) and wap pay (手机网站支付) alike; a wap
// trade gets the phone cashier, a quit link and a wap return.
func (s *Sim) pagePay(w http.ResponseWriter, params url.Values) {
	wap := params.Get("method") == alipay.MethodWapPay
	showErr := func(f *failure) {
		s.renderError(w, http.StatusBadRequest, f.head)
	}
	if f := s.checkRequest(params); f != nil {
		showErr(f)
		return
	}
	var biz struct {
		OutTradeNo     string `json:"out_trade_no"`
		TotalAmount    string `json:"total_amount"`
		Subject        string `json:"subject"`
		ProductCode    string `json:"product_code"`
		TimeoutExpress string `json:"timeout_express"`
		QuitURL        string `json:"quit_url"`
	}
	if err := json.Unmarshal([]byte(params.Get("biz_content")), &biz); err != nil {
		showErr(fail(alipay.CodeInvalidArgs, "isv.invalid-parameter", "biz_content 不是合法的 JSON"))
		return
	}
	cents, err := alipay.ParseAmount(biz.TotalAmount)
	switch {
	case biz.OutTradeNo == "" || len(biz.OutTradeNo) > 64:
		showErr(bizFail("ACQ.INVALID_PARAMETER", "out_trade_no 必填，最长 64 位"))
		return
	case biz.Subject == "":
		showErr(bizFail("ACQ.INVALID_PARAMETER", "subject 必填"))
		return
	case err != nil || cents <= 0:
		showErr(bizFail("ACQ.INVALID_PARAMETER", "total_amount 无效: "+biz.TotalAmount))
		return
	case !wap && biz.ProductCode != "" && biz.ProductCode != alipay.ProductCodePagePay:
		showErr(bizFail("ACQ.INVALID_PARAMETER", "电脑网站支付的 product_code 只能是 FAST_INSTANT_TRADE_PAY"))
		return
	case wap && biz.ProductCode != alipay.ProductCodeWapPay:
		showErr(bizFail("ACQ.INVALID_PARAMETER", "手机网站支付的 product_code 必须是 QUICK_WAP_WAY"))
		return
	}
	timeout, err := parseTimeoutExpress(biz.TimeoutExpress, s.now())
	if err != nil {
		showErr(bizFail("ACQ.INVALID_PARAMETER", err.Error()))
		return
	}

	s.mu.Lock()
	t, ok := s.trades[biz.OutTradeNo]
	if !ok {
		tradeNo, err := s.tradeNo()
		if err != nil {
			s.mu.Unlock()
			showErr(fail(alipay.CodeUnavailable, alipay.SubSystemError, err.Error()))
			return
		}
		t = &trade{
			outTradeNo: biz.OutTradeNo,
			tradeNo:    tradeNo,
			subject:    biz.Subject,
			totalCents: cents,
			status:     alipay.TradeWaitBuyerPay,
			created:    s.now(),
			wap:        wap,
			quitURL:    biz.QuitURL,
		}
		if timeout > 0 {
			t.expires = t.created.Add(timeout)
		}
		s.trades[t.outTradeNo] = t
	} else if t.totalCents != cents || t.subject != biz.Subject {
		s.mu.Unlock()
		showErr(bizFail("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改：同一 out_trade_no 的金额或标题与首次下单不一致"))
		return
	}
	// The latest URLs win, so a restarted merchant on a new port still hears
	// about its trades.
	if v := params.Get("notify_url"); v != "" {
		t.notifyURL = v
	}
	if v := params.Get("return_url"); v != "" {
		t.returnURL = v
	}
	s.expire(t)
	view := t.snapshot()
	s.mu.Unlock()
	s.renderCashier(w, view)
}

// parseTimeoutExpress reads Alipay's timeout_express: 1m to 15d, in m, h or
// d, or 1c for "end of today". Empty means no timeout.
func parseTimeoutExpress(v string, now time.Time) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	if v == "1c" {
		now = now.In(alipay.Beijing())
		y, m, d := now.Date()
		return time.Date(y, m, d+1, 0, 0, 0, 0, alipay.Beijing()).Sub(now), nil
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'm':
		unit = time.Minute
	case 'h':
		unit = time.Hour
	case 'd':
		unit = 24 * time.Hour
	}
	n, err := strconv.Atoi(v[:len(v)-1])
	if unit == 0 || err != nil || n < 1 || n > 15*24*60 || time.Duration(n)*unit > 15*24*time.Hour {
		return 0, fmt.Errorf("timeout_express 无效: %s（1m～15d）", v)
	}
	return time.Duration(n) * unit, nil
}

func beijing(t time.Time) string { return t.In(alipay.Beijing()).Format(alipay.TimeLayout) }
