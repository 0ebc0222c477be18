-- A new table: low risk.
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL,
    total numeric(12, 2) NOT NULL DEFAULT 0,
    legacy_note text,
    created_at timestamptz NOT NULL DEFAULT now()
);
