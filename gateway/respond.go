package gateway

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/flashgate/flashgate"
)

var contentJSON = []byte("application/json")

// rejects holds the pre-rendered bodies of the answers the edge gives most,
// so that writing them allocates nothing.
var rejects = func() map[flashgate.Code][]byte {
	msgs := map[flashgate.Code]string{
		flashgate.Unauthorized: "missing or bad shopper token",
		flashgate.NotFound:     "no such item",
		flashgate.NotStarted:   "the sale of this item has not started",
		flashgate.Ended:        "the sale of this item has ended",
		flashgate.SoldOut:      "no stock left for this item",
		flashgate.RateLimited:  "too many requests",
		flashgate.Unavailable:  "service busy or a dependency is down; nothing was taken from stock; try again",
		flashgate.Forbidden:    "not allowed",
	}
	out := map[flashgate.Code][]byte{}
	for c, m := range msgs {
		b, _ := json.Marshal(map[string]string{"code": string(c), "message": m})
		out[c] = b
	}
	return out
}()

// bodyMaybeTaken answers a buy whose reservation failed after it may have
// reached Redis (a timeout after the script ran, a failed step after a
// borrow): contract §4 allows the 503, and the retry is the way to learn.
var bodyMaybeTaken = func() []byte {
	b, _ := json.Marshal(map[string]string{"code": string(flashgate.Unavailable),
		"message": "a dependency did not answer in time: either nothing was taken, or a unit was taken and its order exists; a retry is safe and then answers duplicate with that order_id"})
	return b
}()

// writeError is the one place where a domain error becomes an HTTP answer.
func writeError(ctx *fasthttp.RequestCtx, err error) flashgate.Code {
	code := flashgate.ErrorCode(err)
	status := flashgate.HTTPStatus(code)
	body := map[string]string{"code": string(code), "message": flashgate.ErrorMessage(err)}
	if e, ok := err.(*flashgate.Error); ok {
		if e.Status != 0 {
			status = e.Status
		}
		if e.OrderID != "" {
			body["order_id"] = e.OrderID
		}
	}
	writeJSON(ctx, status, body)
	return code
}

// reject writes a pre-rendered answer for code without allocating.
func reject(ctx *fasthttp.RequestCtx, code flashgate.Code) flashgate.Code {
	ctx.Response.Header.SetContentTypeBytes(contentJSON)
	ctx.SetStatusCode(flashgate.HTTPStatus(code))
	ctx.SetBody(rejects[code])
	return code
}

func rateLimited(ctx *fasthttp.RequestCtx, retryAfter time.Duration) flashgate.Code {
	secs := int(retryAfter / time.Second)
	if retryAfter%time.Second != 0 || secs < 1 {
		secs++
	}
	var b [8]byte
	ctx.Response.Header.SetBytesV("Retry-After", strconv.AppendInt(b[:0], int64(secs), 10))
	return reject(ctx, flashgate.RateLimited)
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"code":"internal","message":"internal error"}`)
	}
	ctx.Response.Header.SetContentTypeBytes(contentJSON)
	ctx.SetStatusCode(status)
	ctx.SetBody(b)
}

// itemJSON is an item as the public API shows it.
type itemJSON struct {
	ID         int64               `json:"id"`
	ActivityID int64               `json:"activity_id"`
	Name       string              `json:"name"`
	Price      flashgate.Money     `json:"price"`
	StartAt    time.Time           `json:"start_at"`
	EndAt      time.Time           `json:"end_at"`
	Stock      int64               `json:"stock"`
	Remaining  int64               `json:"remaining"`
	State      flashgate.ItemState `json:"state"`
	// Extensions (docs/pages.md): what a page needs to run the buy.
	Points         int64 `json:"points"`
	RequirePath    bool  `json:"require_path"`
	RequireCaptcha bool  `json:"require_captcha"`
}

// orderJSON is an order as its owner sees it.
type orderJSON struct {
	OrderID   string                `json:"order_id"`
	ItemID    int64                 `json:"item_id"`
	UserID    int64                 `json:"user_id"`
	Amount    flashgate.Money       `json:"amount"`
	Status    flashgate.OrderStatus `json:"status"`
	CreatedAt time.Time             `json:"created_at"`
}

func newOrderJSON(o *flashgate.Order) orderJSON {
	return orderJSON{OrderID: o.ID, ItemID: o.ItemID, UserID: o.UserID, Amount: o.Amount, Status: o.Status, CreatedAt: o.CreatedAt}
}
