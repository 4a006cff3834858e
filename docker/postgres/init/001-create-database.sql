-- Runs once, when the postgres-data volume is empty, as POSTGRES_USER.
-- Creates the `dataflow` database DataFlow connects to
-- (DATAFLOW_POSTGRES_URL=postgres://dataflow:dataflow@127.0.0.1:5432/dataflow).
-- With the default POSTGRES_DB=dataflow the entrypoint has already created
-- it, so this only acts when POSTGRES_DB was overridden. The read-model
-- tables are created by DataFlow's projections, not here.
SELECT 'CREATE DATABASE dataflow'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'dataflow')\gexec
