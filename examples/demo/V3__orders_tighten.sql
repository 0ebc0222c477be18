-- Risky: blocking index build, validated FK, SET NOT NULL and a type change on a 48M-row table.
CREATE INDEX orders_created_at_idx ON orders (created_at);
ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);
ALTER TABLE orders ALTER COLUMN region SET NOT NULL;
ALTER TABLE orders ALTER COLUMN id TYPE numeric(20);
UPDATE orders SET status = 'legacy';
