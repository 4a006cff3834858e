-- DataFlow journal and snapshot store for PostgreSQL (also PGlite).
-- Run with psql, naming the schema:  psql -v schema=dataflow -f 0001-journal.sql
-- ensureSchema() runs this same file with the schema name filled in.

CREATE SCHEMA IF NOT EXISTS :"schema";

-- One row per event. `ordering` is the global position used as the offset of
-- tag queries; appends take a transaction-level advisory lock so orderings
-- become visible in increasing order (docs/adr/0003-postgres-tag-ordering.md).
-- Anything else inserting here must take the same lock first:
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
