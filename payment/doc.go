// Package payment is what happens to an order after the buy (contract §8):
// the status pushed to its owner over a WebSocket, the expiry of unpaid
// orders, payment through Alipay (page pay, asynchronous notify, synchronous
// return) or with points, and refunds.
//
// Every change of an order's status is a conditional update of its locked
// row in one MySQL transaction (WHERE status = 'unpaid' for pay and cancel,
// 'paid' for refund), together with what must change with it: the unit
// back in seckill_item.stock_left on cancel and refund, the points balance
// and a points_log row unique per (order, type), the payment_info row. So a
// notify racing the expiry sweep, a replayed notify or a double request
// changes an order at most once, and the side that loses changes nothing. A
// genuine payment that loses (the order was cancelled first, or paid with
// points) is recorded, flagged REFUND_NEEDED and refunded by the sweep.
//
// After a transaction commits, the process that made the change publishes
// it on the order's Redis channel and, for a closed order, returns the unit
// to the user's home shard at once (the worker's restock job is the safety
// net if this process dies in between). WebSocket watchers of the order, in
// any gateway, read the order again on every message.
//
// The expiry sweep runs as a worker job every tick. It walks the orders in
// creation order from a mark (mysql.SweepExpired; docs/design.md, "Expiry
// and restock without an index on the orders"), takes the expired unpaid
// ones with FOR UPDATE SKIP LOCKED (a payment in progress is left alone and
// seen again later), and cancels at once those that never had an Alipay
// trade; workers sweep in turn. For the others it first closes the trade (alipay.trade.close): a
// closed trade can no longer be paid, so cancelling after it is safe; a
// trade that turns out paid (ACQ.TRADE_STATUS_ERROR, confirmed by
// alipay.trade.query) makes the order paid instead; a trade Alipay never saw
// (ACQ.TRADE_NOT_EXIST) is no trade. The pay endpoints refuse an order once
// its TTL has passed, even before the sweep comes, so no new trade starts on
// an order being cancelled.
package payment
