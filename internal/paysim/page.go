package paysim

import (
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"sort"

	"github.com/flashgate/flashgate/internal/alipay"
)

const pagesHTML = `
{{define "top"}}<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{.}} · flashgate paysim</title>
<style>
body{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.3rem;color:#1677ff} table{border-collapse:collapse;width:100%}
td,th{padding:.4rem;border-bottom:1px solid #eee;text-align:left} td{word-break:break-all} .amount{font-size:2rem;font-weight:bold}
form{display:inline} button{font-size:1rem;padding:.5rem 1.5rem;margin:1rem .5rem 0 0;cursor:pointer}
.pay{background:#1677ff;color:#fff;border:0} .note{color:#888;font-size:.85rem}
.kind{display:inline-block;font-size:.8rem;color:#1677ff;border:1px solid #1677ff;border-radius:1rem;padding:.1rem .6rem}
@media (max-width:600px){body{margin:1rem auto} .amount{text-align:center;font-size:2.4rem}
 .wap form{display:block} .wap button{width:100%;margin:.6rem 0 0;padding:.9rem;font-size:1.1rem;border-radius:.5rem}}
</style></head><body><h1>支付宝 · flashgate paysim (sandbox)</h1>{{end}}

{{define "cashier"}}{{template "top" "收银台"}}
<p class="kind" id="kind">{{if .Wap}}手机网站支付 alipay.trade.wap.pay{{else}}电脑网站支付 alipay.trade.page.pay{{end}}</p>
<p class="amount">¥ {{.TotalAmount}}</p>
<table>
<tr><th>订单号 out_trade_no</th><td id="out_trade_no">{{.OutTradeNo}}</td></tr>
<tr><th>商品 subject</th><td>{{.Subject}}</td></tr>
<tr><th>金额 total_amount</th><td id="total_amount">{{.TotalAmount}}</td></tr>
<tr><th>交易号 trade_no</th><td>{{.TradeNo}}</td></tr>
<tr><th>状态 trade_status</th><td id="trade_status">{{.Status}}</td></tr>
</table>
{{if eq .Status "WAIT_BUYER_PAY"}}<div class="{{if .Wap}}wap{{end}}">
<form method="post" action="/sim/pay"><input type="hidden" name="out_trade_no" value="{{.OutTradeNo}}">
<input type="hidden" name="redirect" value="1"><button class="pay" type="submit">Pay 确认付款</button></form>
<form method="post" action="/sim/cancel"><input type="hidden" name="out_trade_no" value="{{.OutTradeNo}}">
<input type="hidden" name="redirect" value="1"><button type="submit">Cancel 取消</button></form>
{{if .QuitURL}}<p><a id="quit" href="{{.QuitURL}}">‹ 返回商家 back to the shop</a></p>{{end}}</div>
{{else}}<p>这笔交易已不能支付（{{.Status}}）。</p>{{end}}
<p class="note">No money moves here. Pay sends the signed notify to {{if .NotifyURL}}{{.NotifyURL}}{{else}}(no notify_url){{end}}.</p>
</body></html>{{end}}

{{define "error"}}{{template "top" "错误"}}
<p>支付宝沙箱拒绝了这个请求。</p>
<table>
<tr><th>code</th><td>{{.Code}} {{.Msg}}</td></tr>
<tr><th>sub_code</th><td id="sub_code">{{.SubCode}}</td></tr>
<tr><th>sub_msg</th><td>{{.SubMsg}}</td></tr>
</table>
</body></html>{{end}}

{{define "index"}}{{template "top" "交易"}}
<table><tr><th>out_trade_no</th><th>total_amount</th><th>trade_status</th><th>refunded</th></tr>
{{range .}}<tr><td>{{.OutTradeNo}}</td><td>{{.TotalAmount}}</td><td>{{.Status}}</td><td>{{.RefundFee}}</td></tr>
{{else}}<tr><td colspan="4">No trades yet: open a page-pay URL.</td></tr>{{end}}
</table></body></html>{{end}}
`

func parsePages() (*template.Template, error) {
	t, err := template.New("pages").Parse(pagesHTML)
	if err != nil {
		return nil, errors.New("parse pages: " + err.Error())
	}
	return t, nil
}

func (s *Sim) render(w http.ResponseWriter, status int, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	// The page is small and the writer a socket: a failure here is the
	// browser going away, nothing to tell it.
	_ = s.pages.ExecuteTemplate(w, name, data)
}

func (s *Sim) renderCashier(w http.ResponseWriter, t Trade) {
	s.render(w, http.StatusOK, "cashier", t)
}

func (s *Sim) renderError(w http.ResponseWriter, status int, h head) {
	s.render(w, status, "error", h)
}

// index lists the trades.
func (s *Sim) index(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	list := make([]Trade, 0, len(s.trades))
	for _, t := range s.trades {
		s.expire(t)
		list = append(list, t.snapshot())
	}
	s.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].OutTradeNo < list[j].OutTradeNo })
	s.render(w, http.StatusOK, "index", list)
}

// simPay is the Pay button and its curl twin.
func (s *Sim) simPay(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	out := r.FormValue("out_trade_no")
	s.afterButton(w, r, out, s.Pay(r.Context(), out))
}

// simCancel is the Cancel button.
func (s *Sim) simCancel(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	out := r.FormValue("out_trade_no")
	s.afterButton(w, r, out, s.Cancel(out))
}

// buttonAnswer is the JSON of /sim/pay and /sim/cancel.
type buttonAnswer struct {
	OutTradeNo  string `json:"out_trade_no"`
	TradeNo     string `json:"trade_no,omitempty"`
	TradeStatus string `json:"trade_status,omitempty"`
	ReturnURL   string `json:"return_url,omitempty"`
	Error       string `json:"error,omitempty"`
}

// afterButton answers a Pay or Cancel: the browser (redirect=1) goes to the
// signed return_url, curl gets JSON.
func (s *Sim) afterButton(w http.ResponseWriter, r *http.Request, outTradeNo string, err error) {
	browser := r.FormValue("redirect") == "1"
	if err != nil {
		status := http.StatusInternalServerError
		switch {
		case errors.Is(err, ErrTradeNotExist):
			status = http.StatusNotFound
		case errors.Is(err, ErrTradeClosed), errors.Is(err, ErrTradePaid):
			status = http.StatusConflict
		}
		if browser {
			s.renderError(w, status, head{Code: alipay.CodeBusinessFail, Msg: codeMsg(alipay.CodeBusinessFail), SubMsg: err.Error()})
			return
		}
		writeJSON(w, status, buttonAnswer{OutTradeNo: outTradeNo, Error: err.Error()})
		return
	}
	s.mu.Lock()
	t := s.trades[outTradeNo]
	view := t.snapshot()
	ret, err := s.returnURL(t)
	s.mu.Unlock()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, buttonAnswer{OutTradeNo: outTradeNo, Error: err.Error()})
		return
	}
	if !browser {
		writeJSON(w, http.StatusOK, buttonAnswer{
			OutTradeNo:  outTradeNo,
			TradeNo:     view.TradeNo,
			TradeStatus: view.Status,
			ReturnURL:   ret,
		})
		return
	}
	if ret == "" {
		s.renderCashier(w, view)
		return
	}
	http.Redirect(w, r, ret, http.StatusSeeOther)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
