-- Running a sale (contract §11): scheduled publishing, archiving, and the
-- log of stock adjustments that makes an adjustment of a live sale finish
-- after a crash.

-- publish_at: when the fleet publishes a scheduled activity (NULL: not
-- scheduled). archived_at: when its Redis state was removed.
ALTER TABLE seckill_activity
  ADD COLUMN IF NOT EXISTS publish_at  DATETIME(3) NULL,
  ADD COLUMN IF NOT EXISTS archived_at DATETIME(3) NULL,
  ADD KEY IF NOT EXISTS idx_activity_publish (publish_at);

-- One row per stock adjustment of a published item. delta is what the
-- operator asked for; applied is what reached Redis and MySQL's stock (for
-- a withdrawal, the units actually taken); state is pending until both
-- stores agree, then done. A pending row older than a few seconds is
-- finished by the worker's reconciler (see docs/design.md).
CREATE TABLE IF NOT EXISTS stock_adjustment (
  id         BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
  item_id    BIGINT      NOT NULL,
  delta      INT         NOT NULL,
  applied    INT         NOT NULL DEFAULT 0,
  state      VARCHAR(16) NOT NULL DEFAULT 'pending',
  created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
  done_at    DATETIME(3) NULL,
  KEY idx_adjust_state (state, created_at),
  KEY idx_adjust_item (item_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
