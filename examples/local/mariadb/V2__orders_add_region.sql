-- Safe: a nullable column at the end is instant on MariaDB 10.3+.
ALTER TABLE orders ADD COLUMN region varchar(32) NULL, ALGORITHM = INSTANT;
