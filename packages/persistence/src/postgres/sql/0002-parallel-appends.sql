-- Migration 2: appends lock per persistence id instead of per schema, and tag
-- queries read only up to a safe ordering (docs/adr/0003-postgres-tag-ordering.md,
-- revised); deleteTo removes rows instead of emptying them.
-- Apply with the migration runner (migratePostgres / `dataflow migrate`), which
-- records it in schema_migrations; it is not meant to be run by hand twice.

-- Rows marked deleted by earlier releases: keep only the tombstones deleteTo keeps
-- now (the first row of an id, for persistenceIds, and its highest, for its
-- sequence number); the others go, with their tag rows.
DELETE FROM :"schema".event_tag t
USING :"schema".event_journal j
WHERE j.ordering = t.ordering AND j.deleted;

DELETE FROM :"schema".event_journal j
WHERE j.deleted AND j.sequence_nr > 1
  AND j.sequence_nr < (SELECT max(m.sequence_nr) FROM :"schema".event_journal m WHERE m.persistence_id = j.persistence_id);

-- Orderings are drawn one at a time from the sequence (no per-session cache), so
-- an ordering at most the sequence's last value was drawn before it was read.
ALTER SEQUENCE :"schema".event_journal_ordering_seq CACHE 1;

-- The append: the same signature and answers as in migration 1, other locks.
-- 1. A shared advisory lock on the schema's "appending" key, taken before any
--    ordering is drawn and held until the commit is visible: every append in
--    flight is listed in pg_locks (see append_watermark below). Shared locks
--    never wait for each other, so appends of all processes run in parallel.
-- 2. An exclusive advisory lock per persistence id of the group, in key order
--    (no deadlock between groups), so the expected-sequence-number check is exact.
-- Call it outside an explicit transaction: the statement is the transaction.
CREATE OR REPLACE FUNCTION :"schema".append_events(
  append_ids        TEXT[],
  append_expected   BIGINT[],
  append_sizes      INTEGER[],
  append_writers    TEXT[],
  append_written_at BIGINT[],
  event_types       TEXT[],
  schema_versions   INTEGER[],
  serializer_ids    TEXT[],
  payloads          BYTEA[],
  event_tags        JSONB)
RETURNS TABLE (append_index INTEGER, highest_sequence_nr BIGINT)
LANGUAGE plpgsql
SET search_path = :"schema", pg_temp
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

  PERFORM pg_advisory_xact_lock_shared(hashtext('dataflow-appending'), hashtext(current_schema()));
  PERFORM pg_advisory_xact_lock(k.key)
  FROM (SELECT DISTINCT hashtextextended(current_schema() || ':' || id, 0) AS key FROM unnest(append_ids) AS id ORDER BY 1) AS k;

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

-- What a tag query may read up to. Reads the sequence's last drawn value, then
-- (after it) the appends in flight: the transactions holding the "appending" lock.
-- Every ordering up to `drawn` is visible (or rolled back for good) once each of
-- `appenders` is gone from pg_locks; the read journal waits for that.
CREATE OR REPLACE FUNCTION :"schema".append_watermark(OUT drawn BIGINT, OUT appenders TEXT[])
LANGUAGE plpgsql
SET search_path = :"schema", pg_temp
AS $$
BEGIN
  SELECT CASE WHEN s.is_called THEN s.last_value ELSE 0 END INTO drawn FROM event_journal_ordering_seq s;
  SELECT coalesce(array_agg(l.virtualtransaction), '{}') INTO appenders
  FROM pg_locks l
  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
    AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
    AND l.classid = hashtext('dataflow-appending')::oid AND l.objid = hashtext(current_schema())::oid;
END
$$;

-- Which of the given appenders (virtual transaction ids from append_watermark) still hold the lock.
CREATE OR REPLACE FUNCTION :"schema".appenders_still_running(candidates TEXT[])
RETURNS TEXT[]
LANGUAGE sql
SET search_path = :"schema", pg_temp
AS $$
  SELECT coalesce(array_agg(l.virtualtransaction), '{}')
  FROM pg_locks l
  WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
    AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
    AND l.classid = hashtext('dataflow-appending')::oid AND l.objid = hashtext(current_schema())::oid
    AND l.virtualtransaction = ANY (candidates)
$$;
