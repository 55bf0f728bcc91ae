package gateway

import (
	"github.com/valyala/fasthttp"

	"github.com/flashgate/flashgate"
)

// Helpers for the handlers other packages mount with Handle, so that their
// answers take the same shape as the built-in ones.

// WriteError writes err as the contract's error answer and returns its code.
func WriteError(ctx *fasthttp.RequestCtx, err error) flashgate.Code { return writeError(ctx, err) }

// WriteJSON writes v as JSON with status.
func WriteJSON(ctx *fasthttp.RequestCtx, status int, v any) { writeJSON(ctx, status, v) }

// OrderView returns o as its owner sees it in answers, the "order" object
// of GET /api/v1/orders/{order_id}.
func OrderView(o *flashgate.Order) any { return newOrderJSON(o) }
