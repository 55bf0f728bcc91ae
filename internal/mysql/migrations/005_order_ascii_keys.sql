-- seckill_order's key columns in ascii with binary collation (issue 12).
-- order_id is the primary key, so every secondary index carries it, and
-- status is in two of them: in utf8mb4 every insert checked and converted
-- up to four bytes a character and compared with utf8mb4_general_ci's
-- weights; in ascii_bin a key is its bytes. The values are the same
-- strings (flashgate's order ids are Crockford base32, its statuses
-- lowercase words); only comparisons become exact: 'PAID' no longer
-- matches 'paid'. The worker refuses order ids that are not printable
-- ASCII of at most 64 bytes (mysql.ValidOrderID).
--
-- On an existing table this is a rebuild (ALGORITHM=COPY: writes wait
-- while it runs): 4 to 12 s per 500,000 rows on the project's 2-core
-- machine under load, see docs/performance.md. Run it between sales.
ALTER TABLE seckill_order
  MODIFY order_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  MODIFY status   VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL;
