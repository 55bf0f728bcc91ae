-- Refunds asked of a channel, written before the channel is called: a refund
-- the channel confirmed but whose recording failed (MySQL gone at that very
-- moment) stays pending here, and the worker's repair job asks the channel
-- and records it. state: pending, done (recorded), abandoned (the channel
-- never refunded).
CREATE TABLE IF NOT EXISTS refund_request (
  out_request_no VARCHAR(80) NOT NULL PRIMARY KEY,
  order_id       VARCHAR(64) NOT NULL,
  channel        VARCHAR(16) NOT NULL,
  state          VARCHAR(16) NOT NULL,
  requested_at   DATETIME(3) NOT NULL,
  KEY idx_refund_request_state (state, requested_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
