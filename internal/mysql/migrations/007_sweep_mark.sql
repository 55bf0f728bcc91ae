-- The expiry sweep and the restocker without idx_order_sweep (issue 12):
-- that index (status, restocked, created_at) was written by every insert
-- and rewritten by every status change, for two periodic readers. See
-- internal/mysql/sweep.go and docs/design.md.
--
-- seckill_sweep_mark: the sweep walks seckill_order's primary key (order
-- ids begin with their creation millisecond) from this mark up to the
-- cutoff; every order with such an id below the mark has been seen by the
-- sweep, or is stored expired by the insert that brings it late. The
-- workers' inserts read it shared, the sweep holds it exclusively while it
-- walks and moves it.
CREATE TABLE IF NOT EXISTS seckill_sweep_mark (
  id   TINYINT UNSIGNED NOT NULL PRIMARY KEY,
  -- an order id prefix, or an order id followed by '!'
  mark VARCHAR(65) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
) ENGINE=InnoDB;

-- Unpaid orders the walk does not settle, swept by created_at: those a
-- payment held when the walk passed, those with an Alipay trade still
-- open, and those whose ids do not begin with their creation time.
CREATE TABLE IF NOT EXISTS seckill_sweep_pending (
  order_id   VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
  created_at DATETIME(3) NOT NULL,
  KEY idx_pending_created (created_at)
) ENGINE=InnoDB;

-- The restocker's queue: cancelled or refunded orders whose unit is not
-- back in Redis (restocked = 0). Written in the transaction that closes
-- the order, deleted with MarkRestocked.
CREATE TABLE IF NOT EXISTS seckill_restock (
  order_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY
) ENGINE=InnoDB;

-- The existing rows, read once through idx_order_sweep before it goes
-- (INSERT IGNORE: run again after a failure midway, it adds nothing
-- twice). The mark starts at the beginning: it may only ever be below the
-- ids of orders not expired yet, and this migration does not know the
-- TTL; the first sweeps walk the existing rows once, batch by batch.
-- Every unpaid order is listed as pending as well, so that one whose id
-- the walk never reaches (an id that is not flashgate's) is swept. Stop
-- the previous release's workers, admin and gateways before migrating
-- (docs/operations.md): they write neither table.
INSERT IGNORE INTO seckill_sweep_mark (id, mark) VALUES (1, '');
INSERT IGNORE INTO seckill_sweep_pending (order_id, created_at)
  SELECT order_id, created_at FROM seckill_order WHERE status = 'unpaid' AND restocked = 0;
INSERT IGNORE INTO seckill_restock (order_id)
  SELECT order_id FROM seckill_order WHERE status IN ('cancelled', 'refunded') AND restocked = 0;

ALTER TABLE seckill_order DROP INDEX IF EXISTS idx_order_sweep;
