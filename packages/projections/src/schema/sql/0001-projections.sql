-- Projection offsets and management, and the pipeline read models of docs/domain.md.
-- Applied by migrateProjections() (the CLI's migrate); :"schema" is the target schema.

CREATE TABLE IF NOT EXISTS :"schema".projection_offset (
  projection_name TEXT        NOT NULL,
  projection_key  TEXT        NOT NULL,
  -- The journal offset after the last event applied (an Offset of @dataflow/core, as JSON); NULL = from the start.
  "offset"        JSONB,
  -- Events applied since the offset was last cleared (for progress and lag).
  events_applied  BIGINT      NOT NULL DEFAULT 0,
  -- Timestamp (epoch ms) of the last event applied.
  last_event_at   BIGINT,
  paused          BOOLEAN     NOT NULL DEFAULT false,
  last_error      TEXT,
  updated_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (projection_name, projection_key)
);

CREATE TABLE IF NOT EXISTS :"schema".pipeline_status (
  pipeline_id    TEXT PRIMARY KEY,
  pipeline_name  TEXT,
  status         TEXT,
  source_type    TEXT,
  sink_type      TEXT,
  total_records  BIGINT NOT NULL DEFAULT 0,
  total_batches  BIGINT NOT NULL DEFAULT 0,
  total_failures BIGINT NOT NULL DEFAULT 0,
  created_at     TIMESTAMPTZ,
  updated_at     TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS pipeline_status_status_idx ON :"schema".pipeline_status (status);
CREATE INDEX IF NOT EXISTS pipeline_status_updated_at_idx ON :"schema".pipeline_status (updated_at DESC);

-- records_processed / batches / failures are the sums; avg_batch_size and error_rate are kept from them.
CREATE TABLE IF NOT EXISTS :"schema".pipeline_metrics_hourly (
  pipeline_id       TEXT             NOT NULL,
  hour              TIMESTAMPTZ      NOT NULL,
  records_processed BIGINT           NOT NULL DEFAULT 0,
  avg_batch_size    DOUBLE PRECISION NOT NULL DEFAULT 0,
  error_rate        DOUBLE PRECISION NOT NULL DEFAULT 0,
  batches           BIGINT           NOT NULL DEFAULT 0,
  failures          BIGINT           NOT NULL DEFAULT 0,
  PRIMARY KEY (pipeline_id, hour)
);
