-- The metrics table. With TimescaleDB loaded it is a hypertable (one chunk per
-- day); otherwise it is partitioned natively by day, and the service creates
-- the partitions ahead of time and drops whole ones past retention.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
     AND coalesce(current_setting('shared_preload_libraries', true), '') LIKE '%timescaledb%' THEN
    CREATE EXTENSION IF NOT EXISTS timescaledb;
    CREATE TABLE metrics (
      ts    timestamptz      NOT NULL,
      type  text             NOT NULL,
      value double precision NOT NULL
    );
    PERFORM create_hypertable('metrics', 'ts', chunk_time_interval => interval '1 day');
  ELSE
    CREATE TABLE metrics (
      ts    timestamptz      NOT NULL,
      type  text             NOT NULL,
      value double precision NOT NULL
    ) PARTITION BY RANGE (ts);
  END IF;
END
$$;

-- Serves every query: one type over a time range, newest first.
CREATE INDEX metrics_type_ts ON metrics (type, ts);
