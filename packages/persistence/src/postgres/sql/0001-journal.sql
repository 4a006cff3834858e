-- DataFlow journal and snapshot store for PostgreSQL (also PGlite).
-- Run with psql, naming the schema:  psql -v schema=dataflow -f 0001-journal.sql
-- ensureSchema() runs this same file with the schema name filled in.

CREATE SCHEMA IF NOT EXISTS :"schema";

-- One row per event. `ordering` is the global position used as the offset of
-- tag queries; appends take a transaction-level advisory lock so orderings
-- become visible in increasing order (docs/adr/0003-postgres-tag-ordering.md).
-- Anything else inserting here must call append_events (below) or take the
-- same lock first:
--   SELECT pg_advisory_xact_lock(hashtext('dataflow-append:<schema>'));
CREATE TABLE IF NOT EXISTS :"schema".event_journal (
  ordering        BIGSERIAL NOT NULL,
  persistence_id  TEXT      NOT NULL,
  sequence_nr     BIGINT    NOT NULL,
  writer_id       TEXT      NOT NULL,
  event_type      TEXT      NOT NULL,
  schema_version  INTEGER   NOT NULL,
  serializer_id   TEXT      NOT NULL,
  payload         BYTEA     NOT NULL,
  tags            TEXT[]    NOT NULL DEFAULT '{}',
  written_at      BIGINT    NOT NULL, -- epoch milliseconds
  -- deleteTo marks rows deleted and empties their payload; the row keeps its
  -- sequence number so the highest one is never lowered and never reused.
  deleted         BOOLEAN   NOT NULL DEFAULT FALSE,
  PRIMARY KEY (persistence_id, sequence_nr)
);

CREATE UNIQUE INDEX IF NOT EXISTS event_journal_ordering_idx
  ON :"schema".event_journal (ordering);

-- persistenceIds(): every id has exactly one row with sequence number 1.
CREATE INDEX IF NOT EXISTS event_journal_first_event_idx
  ON :"schema".event_journal (ordering) WHERE sequence_nr = 1;

-- eventsByTag(): an ordered range scan per tag instead of a GIN lookup plus sort.
CREATE TABLE IF NOT EXISTS :"schema".event_tag (
  tag       TEXT   NOT NULL,
  ordering  BIGINT NOT NULL, -- event_journal.ordering; journal rows are never removed
  PRIMARY KEY (tag, ordering)
);

CREATE TABLE IF NOT EXISTS :"schema".snapshot (
  persistence_id  TEXT    NOT NULL,
  sequence_nr     BIGINT  NOT NULL,
  written_at      BIGINT  NOT NULL, -- epoch milliseconds, as given by the writer
  schema_version  INTEGER NOT NULL,
  serializer_id   TEXT    NOT NULL,
  state           BYTEA   NOT NULL,
  PRIMARY KEY (persistence_id, sequence_nr)
);

-- The journal's append, one statement per group of appends (any persistence
-- ids; one round trip). Takes the append lock, checks each append's expected
-- sequence number against the highest stored one (appends to one id in arrival
-- order, as if written one after the other), inserts the events and tag rows
-- of the accepted appends, and returns one row per refused append: its 1-based
-- index and the highest sequence number it should have expected. Call it
-- outside an explicit transaction: the statement is the transaction, so the
-- lock is held until the commit is visible (docs/adr/0003-postgres-tag-ordering.md).
CREATE OR REPLACE FUNCTION :"schema".append_events(
  append_ids        TEXT[],    -- per append, in arrival order: the persistence id,
  append_expected   BIGINT[],  -- the highest sequence number it expects,
  append_sizes      INTEGER[], -- its number of events,
  append_writers    TEXT[],    -- its writer id
  append_written_at BIGINT[],  -- and its timestamp (epoch milliseconds);
  event_types       TEXT[],    -- per event, the events of append 1 first:
  schema_versions   INTEGER[],
  serializer_ids    TEXT[],
  payloads          BYTEA[],
  event_tags        JSONB)     -- a JSON array holding one array of tags per event
RETURNS TABLE (append_index INTEGER, highest_sequence_nr BIGINT)
LANGUAGE plpgsql
SET search_path = :"schema", pg_temp
-- Its statements' plans do not depend on the values; replanning them on every
-- call (what "auto" chose) cost more than half of the function's time.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  accepted        INTEGER[] := '{}';
  current_id      TEXT;
  current_highest BIGINT;
  total_events    BIGINT := 0;
  candidate       RECORD;
BEGIN
  IF cardinality(append_ids) IS DISTINCT FROM cardinality(append_expected)
     OR cardinality(append_ids) IS DISTINCT FROM cardinality(append_sizes)
     OR cardinality(append_ids) IS DISTINCT FROM cardinality(append_writers)
     OR cardinality(append_ids) IS DISTINCT FROM cardinality(append_written_at)
     OR cardinality(event_types) IS DISTINCT FROM cardinality(schema_versions)
     OR cardinality(event_types) IS DISTINCT FROM cardinality(serializer_ids)
     OR cardinality(event_types) IS DISTINCT FROM cardinality(payloads)
     OR cardinality(event_types) IS DISTINCT FROM jsonb_array_length(event_tags) THEN
    RAISE EXCEPTION 'append_events: the per-append and per-event arrays do not match' USING ERRCODE = 'invalid_parameter_value';
  END IF;

  -- Taken before the check, so the check is exact; held until the commit.
  PERFORM pg_advisory_xact_lock(hashtext('dataflow-append:' || current_schema()));

  -- Sorted by id, then arrival: one pass keeps the running highest per id.
  FOR candidate IN
    SELECT a.i::INTEGER AS i, a.id, a.expected, a.size,
           (SELECT max(j.sequence_nr) FROM event_journal j WHERE j.persistence_id = a.id) AS stored
    FROM unnest(append_ids, append_expected, append_sizes) WITH ORDINALITY AS a(id, expected, size, i)
    ORDER BY a.id, a.i
  LOOP
    total_events := total_events + candidate.size;
    IF current_id IS DISTINCT FROM candidate.id THEN
      current_id := candidate.id;
      current_highest := coalesce(candidate.stored, 0);
    END IF;
    IF candidate.expected = current_highest THEN
      accepted := accepted || candidate.i;
      current_highest := current_highest + candidate.size;
    ELSE
      append_index := candidate.i;
      highest_sequence_nr := current_highest;
      RETURN NEXT;
    END IF;
  END LOOP;
  IF total_events IS DISTINCT FROM coalesce(cardinality(event_types), 0) THEN
    RAISE EXCEPTION 'append_events: the append sizes add up to %, but % events were given', total_events, cardinality(event_types)
      USING ERRCODE = 'invalid_parameter_value';
  END IF;

  IF cardinality(accepted) > 0 THEN
    WITH appends AS (
      SELECT a.i, a.id, a.expected, a.size, a.writer, a.written_at, sum(a.size) OVER (ORDER BY a.i) - a.size AS first
      FROM unnest(append_ids, append_expected, append_sizes, append_writers, append_written_at)
        WITH ORDINALITY AS a(id, expected, size, writer, written_at, i)
    ), inserted AS (
      INSERT INTO event_journal (persistence_id, sequence_nr, writer_id, event_type, schema_version, serializer_id, payload, tags, written_at)
      SELECT a.id, a.expected + s.n, a.writer, e.event_type, e.schema_version, e.serializer_id, e.payload,
             ARRAY(SELECT jsonb_array_elements_text(event_tags -> (e.pos - 1)::INTEGER)), a.written_at
      FROM appends a
      CROSS JOIN LATERAL generate_series(1, a.size) AS s(n)
      JOIN unnest(event_types, schema_versions, serializer_ids, payloads)
        WITH ORDINALITY AS e(event_type, schema_version, serializer_id, payload, pos) ON e.pos = a.first + s.n
      WHERE a.i = ANY (accepted)
      ORDER BY a.i, s.n
      RETURNING ordering, tags)
    INSERT INTO event_tag (tag, ordering) SELECT unnest(tags), ordering FROM inserted;
  END IF;
END
$$;
