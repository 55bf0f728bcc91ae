-- Activities, items and orders: the tables of contract §7.
CREATE TABLE IF NOT EXISTS seckill_activity (
  id           BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name         VARCHAR(200) NOT NULL,
  start_at     DATETIME(3)  NOT NULL,
  end_at       DATETIME(3)  NOT NULL,
  published_at DATETIME(3)  NULL,
  created_at   DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  KEY idx_activity_end (end_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS seckill_item (
  id           BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
  activity_id  BIGINT        NOT NULL,
  name         VARCHAR(200)  NOT NULL,
  price        DECIMAL(12,2) NOT NULL,
  points       BIGINT        NOT NULL,
  stock        INT           NOT NULL,
  -- units not held by a live order: the second line against overselling
  stock_left   INT           NOT NULL,
  shards       INT           NOT NULL,
  require_path TINYINT(1)    NOT NULL DEFAULT 0,
  created_at   DATETIME(3)   NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  KEY idx_item_activity (activity_id),
  CONSTRAINT fk_item_activity FOREIGN KEY (activity_id) REFERENCES seckill_activity (id),
  CONSTRAINT chk_item_stock_left CHECK (stock_left >= 0 AND stock_left <= stock)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS seckill_order (
  order_id   VARCHAR(64)   NOT NULL PRIMARY KEY,
  item_id    BIGINT        NOT NULL,
  user_id    BIGINT        NOT NULL,
  amount     DECIMAL(12,2) NOT NULL,
  status     VARCHAR(16)   NOT NULL,
  created_at DATETIME(3)   NOT NULL,
  paid_at    DATETIME(3)   NULL,
  closed_at  DATETIME(3)   NULL,
  -- 1 once the unit of a cancelled or refunded order is back in Redis
  restocked  TINYINT(1)    NOT NULL DEFAULT 0,
  -- the user while the order is live, NULL otherwise: the unique key below
  -- lets a user hold at most one live order per item
  live_user  BIGINT AS (IF(status IN ('unpaid', 'paid'), user_id, NULL)) PERSISTENT,
  UNIQUE KEY uk_order_live (item_id, live_user),
  -- stats by item; the expiry sweep (unpaid, restocked 0, oldest first)
  -- and the restocker (cancelled or refunded, restocked 0). Every index
  -- costs on the hot insert path, so there are no others.
  KEY idx_order_item_status (item_id, status),
  KEY idx_order_sweep (status, restocked, created_at),
  CONSTRAINT chk_order_status CHECK (status IN ('unpaid', 'paid', 'cancelled', 'refunded'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
