// Package paysim is the Alipay sandbox that `flashgate dev` runs when no real
// Alipay account is configured. It speaks the gateway protocol of
// openapi.alipay.com closely enough that flashgate's [alipay.Client] cannot
// tell the difference: merchant requests must be signed (RSA2) with the key
// whose public half the Sim holds, and everything the Sim sends back (API
// answers, asynchronous notifies, synchronous returns) is signed with the
// Sim's own Alipay key, see [Sim.AlipayPublicKey].
//
// Endpoints of [Sim.Handler]:
//
//	GET|POST /gateway.do   method=alipay.trade.page.pay: the cashier page of the
//	                       order, with Pay and Cancel buttons. Opening it
//	                       creates the trade (WAIT_BUYER_PAY).
//	POST /gateway.do       method=alipay.trade.query | .refund | .close: JSON
//	                       {"alipay_trade_xxx_response":{...},"sign":"..."}.
//	POST /sim/pay          form or query out_trade_no=...: pays the trade like
//	                       the Pay button, without a browser; answers JSON
//	                       {"out_trade_no","trade_no","trade_status","return_url"}.
//	                       With redirect=1 (what the button sends) it answers
//	                       303 to the signed return_url instead.
//	POST /sim/cancel       out_trade_no=...: the Cancel button; closes the
//	                       unpaid trade, same answers as /sim/pay.
//	GET  /                 the trades the Sim knows, for a look around.
//
// A curl tour, once flashgate has handed out a pay_url:
//
//	curl -s "$PAY_URL" >/dev/null                      # open the page: trade exists
//	curl -s -X POST "http://127.0.0.1:8082/sim/pay?out_trade_no=$ORDER_ID"
//
// Paying marks the trade TRADE_SUCCESS and POSTs the signed notify to the
// notify_url given at page pay. The first attempt is made before Pay returns;
// until an answer's body is exactly "success" the Sim tries again after each
// delay of Config.NotifyBackoff (real Alipay spreads eight retries over a day;
// the default here is seconds), then gives up. A refund sends a notify too,
// as Alipay does: trade_status TRADE_CLOSED once fully refunded.
//
// State lives in memory and dies with the Sim.
package paysim
