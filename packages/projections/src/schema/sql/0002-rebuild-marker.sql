-- The marker of a rebuild (rebuildReadModel): one row per read model while a rebuild of it runs, saying
-- who runs it, which instances it paused and that it is alive (heartbeat_at, refreshed every second).
-- A row whose heartbeat went stale is an abandoned rebuild: recoverAbandonedRebuilds lifts the pauses it
-- set, drops its shadow table and keeps the row as a record (abandoned_at) until the next rebuild replaces it.
-- Applied by migrateProjections() (the CLI's migrate); :"schema" is the target schema.

CREATE TABLE IF NOT EXISTS :"schema".projection_rebuild (
  projection_name TEXT        PRIMARY KEY,
  -- The live projection's key (`default`, or `slices` for a read model split into slice ranges).
  projection_key  TEXT        NOT NULL,
  -- Who runs it (host, pid and a random id of the run).
  owner           TEXT        NOT NULL,
  shadow_table    TEXT        NOT NULL,
  shadow_key      TEXT        NOT NULL,
  -- The instances ([{ "name", "key" }], rows of projection_offset) this rebuild paused; one paused before it (by an operator) is not listed.
  paused_ids      JSONB       NOT NULL DEFAULT '[]'::jsonb,
  started_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
  heartbeat_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
  -- Set in the swap's transaction: the rebuilt table is live, only the pauses remain to lift.
  swapped_at      TIMESTAMPTZ,
  -- Set by the recovery of an abandoned rebuild (the row is then only a record of it).
  abandoned_at    TIMESTAMPTZ
);
