-- High risk: dropping a column destroys data (and breaks code still reading it).
SET lock_timeout = '3s';
ALTER TABLE orders DROP COLUMN legacy_note;
