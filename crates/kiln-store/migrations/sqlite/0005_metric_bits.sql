-- The stored value's IEEE-754 bits beside it, written with every history point: SQLite hands a
-- whole history over as one row of exact text (bits, not a decimal rendering). NULL for points
-- logged before this migration (those histories are read row by row).
ALTER TABLE metrics ADD COLUMN value_bits BIGINT;
-- (one statement)
