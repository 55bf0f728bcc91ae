-- Items that hand out their hidden buy path only against a solved captcha
-- (contract §12).
ALTER TABLE seckill_item ADD COLUMN IF NOT EXISTS require_captcha TINYINT(1) NOT NULL DEFAULT 0;
