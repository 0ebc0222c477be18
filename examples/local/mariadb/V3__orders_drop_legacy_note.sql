-- High risk: dropping a column destroys data (and breaks code still reading it).
ALTER TABLE orders DROP COLUMN legacy_note;
