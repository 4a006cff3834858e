-- Migration 3: eventsBySlices (the slice query of Pekko's r2dbc plugin).
-- Every event row gets its persistence id's entity type (the prefix before the
-- first '-', the whole id when it has none) and slice (abs(Java
-- String.hashCode(persistence_id) % 1024), as sliceForPersistenceId in
-- @dataflow/core computes it), filled by a trigger at insert time whatever
-- writes the row; existing rows get them by the UPDATE below. The index
-- (entity_type, slice, ordering) serves the query's range read.
-- Apply with the migration runner (migratePostgres / `dataflow migrate`).

-- Java's String.hashCode over the UTF-16 code units (a code point above
-- U+FFFF counts as its two surrogates), kept as an unsigned 32-bit value while
-- folding, then taken as signed; abs(h % 1024) as Java's % truncates like
-- Postgres's.
CREATE OR REPLACE FUNCTION :"schema".persistence_id_slice(persistence_id TEXT)
RETURNS INTEGER
LANGUAGE plpgsql
IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
  h    BIGINT := 0;
  cp   INTEGER;
  i    INTEGER;
BEGIN
  FOR i IN 1 .. char_length(persistence_id) LOOP
    cp := ascii(substr(persistence_id, i, 1));
    IF cp > 65535 THEN
      h := (h * 31 + (55296 + ((cp - 65536) >> 10))) & 4294967295;
      h := (h * 31 + (56320 + ((cp - 65536) & 1023))) & 4294967295;
    ELSE
      h := (h * 31 + cp) & 4294967295;
    END IF;
  END LOOP;
  IF h >= 2147483648 THEN
    h := h - 4294967296;
  END IF;
  RETURN abs(h % 1024)::INTEGER;
END
$$;

ALTER TABLE :"schema".event_journal ADD COLUMN IF NOT EXISTS entity_type TEXT;
ALTER TABLE :"schema".event_journal ADD COLUMN IF NOT EXISTS slice INTEGER;

UPDATE :"schema".event_journal
SET entity_type = split_part(persistence_id, '-', 1),
    slice = :"schema".persistence_id_slice(persistence_id)
WHERE entity_type IS NULL OR slice IS NULL;

CREATE OR REPLACE FUNCTION :"schema".event_journal_fill_slice()
RETURNS TRIGGER
LANGUAGE plpgsql
AS $$
BEGIN
  NEW.entity_type := split_part(NEW.persistence_id, '-', 1);
  NEW.slice := persistence_id_slice(NEW.persistence_id);
  RETURN NEW;
END
$$;

ALTER FUNCTION :"schema".event_journal_fill_slice() SET search_path = :"schema", pg_temp;

DROP TRIGGER IF EXISTS event_journal_fill_slice ON :"schema".event_journal;
CREATE TRIGGER event_journal_fill_slice
  BEFORE INSERT ON :"schema".event_journal
  FOR EACH ROW EXECUTE FUNCTION :"schema".event_journal_fill_slice();

ALTER TABLE :"schema".event_journal ALTER COLUMN entity_type SET NOT NULL;
ALTER TABLE :"schema".event_journal ALTER COLUMN slice SET NOT NULL;

CREATE INDEX IF NOT EXISTS event_journal_slice_idx
  ON :"schema".event_journal (entity_type, slice, ordering);
