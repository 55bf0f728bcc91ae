-- Payments, points and refunds (contract §8). State changes of an order are
-- conditional updates of seckill_order; these tables record how they came about.

-- One row per order and channel: the Alipay trade handed out at page pay (or
-- the points payment). status follows the channel's trade: WAIT_BUYER_PAY,
-- TRADE_SUCCESS, TRADE_FINISHED, TRADE_CLOSED, REFUNDED, or REFUND_NEEDED when
-- the channel took money for an order that was already closed or paid another
-- way (an operator, or the refund sweep, gives it back).
-- callback_time and callback_content hold the notify that decided the row.
CREATE TABLE IF NOT EXISTS payment_info (
  id               BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_id         VARCHAR(64)   NOT NULL,
  channel          VARCHAR(16)   NOT NULL,
  trade_no         VARCHAR(64)   NULL,
  amount           DECIMAL(12,2) NOT NULL,
  status           VARCHAR(32)   NOT NULL,
  callback_time    DATETIME(3)   NULL,
  callback_content TEXT          NULL,
  created_at       DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  updated_at       DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  UNIQUE KEY uk_payment_order_channel (order_id, channel),
  KEY idx_payment_status (status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Every genuine notify (and every trade query that decided an order), raw, with
-- what it did: paid, replay, refund_needed or recorded.
CREATE TABLE IF NOT EXISTS payment_notify (
  id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_id     VARCHAR(64)  NOT NULL,
  channel      VARCHAR(16)  NOT NULL,
  notify_id    VARCHAR(128) NOT NULL,
  trade_status VARCHAR(32)  NOT NULL,
  outcome      VARCHAR(32)  NOT NULL,
  content      TEXT         NOT NULL,
  received_at  DATETIME(3)  NOT NULL,
  KEY idx_notify_order (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS points_account (
  user_id    BIGINT      NOT NULL PRIMARY KEY,
  balance    BIGINT      NOT NULL,
  updated_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  CONSTRAINT chk_points_balance CHECK (balance >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Every change of a balance. type is pay, refund or grant; out_trade_no is the
-- order of a pay or refund (NULL for grants), and the unique key makes a pay
-- or a refund of one order happen once, whatever retries.
CREATE TABLE IF NOT EXISTS points_log (
  id           BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id      BIGINT      NOT NULL,
  out_trade_no VARCHAR(64) NULL,
  type         VARCHAR(16) NOT NULL,
  delta        BIGINT      NOT NULL,
  balance      BIGINT      NOT NULL,
  created_at   DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  UNIQUE KEY uk_points_trade_type (out_trade_no, type),
  KEY idx_points_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per refund given through a channel: the owner's refund of a paid
-- order (out_request_no <order>-R) or the refund of a payment flagged
-- REFUND_NEEDED (<order>-A).
CREATE TABLE IF NOT EXISTS refund_log (
  id             BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_id       VARCHAR(64)   NOT NULL,
  channel        VARCHAR(16)   NOT NULL,
  out_request_no VARCHAR(80)   NOT NULL,
  amount         DECIMAL(12,2) NOT NULL,
  points         BIGINT        NULL,
  trade_no       VARCHAR(64)   NULL,
  refunded_at    DATETIME(3)   NOT NULL,
  UNIQUE KEY uk_refund_request (out_request_no),
  KEY idx_refund_order (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
