-- The Postgres dead-letter table of DataFlow: every record a pipeline stage
-- failed, with what is needed to understand and replay it.
-- {{schema}} is replaced by the quoted schema name; the statements are
-- idempotent and run under an advisory lock (see PostgresDeadLetterTarget.ensureSchema).
CREATE SCHEMA IF NOT EXISTS {{schema}};

CREATE TABLE IF NOT EXISTS {{schema}}.dead_letters (
  id            bigserial PRIMARY KEY,
  pipeline_id   text        NOT NULL,
  stage         text        NOT NULL CHECK (stage IN ('source', 'transform', 'sink')),
  stage_name    text        NOT NULL,
  error_message text        NOT NULL,
  error_tag     text,
  retriable     boolean     NOT NULL,
  attempt       integer     NOT NULL,
  payload       jsonb       NOT NULL,
  batch_id      text,
  failed_at     timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS dead_letters_pipeline_failed_at
  ON {{schema}}.dead_letters (pipeline_id, failed_at DESC);

-- Pages of one pipeline's letters, oldest first (the admin API's peek and replay).
CREATE INDEX IF NOT EXISTS dead_letters_pipeline_id
  ON {{schema}}.dead_letters (pipeline_id, id);
