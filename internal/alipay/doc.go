// Package alipay is flashgate's merchant-side client for Alipay's open
// platform (openapi.alipay.com/gateway.do), written against the public
// protocol with the standard library only.
//
// Every request carries the common parameters (app_id, method, format, charset,
// sign_type=RSA2, timestamp, version) and a JSON biz_content, and is signed
// with the merchant's RSA private key: SHA256withRSA, PKCS#1 v1.5, base64,
// over the canonical string of the parameters (sorted by key, sign and empty
// values left out, joined as k=v with &, values not URL-escaped).
//
// What Alipay sends back is signed with Alipay's key:
//
//   - the asynchronous notify (a form POST) and the synchronous return (a
//     browser redirect) are signed over the canonical string without sign and
//     sign_type; see [Client.ParseNotify] and [Client.ParseReturn];
//   - an API answer {"alipay_trade_query_response":{...},"sign":"..."} is
//     signed over the exact bytes of the response node, which is why the node
//     is cut out of the body as raw JSON and never re-encoded.
//
// A notify or return is only as good as its checks: after ParseNotify the
// caller must still compare out_trade_no and total_amount (see [AmountEqual])
// with its own order before trusting trade_status.
package alipay
