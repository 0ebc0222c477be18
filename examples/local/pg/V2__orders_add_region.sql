-- Safe: a nullable column and a concurrent index, with a lock timeout.
-- cutover: transaction=none
SET lock_timeout = '3s';
ALTER TABLE orders ADD COLUMN IF NOT EXISTS region text;
CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_region_idx ON orders (region);
