-- Rollups: for each type, the aggregates of every minute, hour and day (count, sum,
-- min, max, first and last timestamp, the latest value) and, in `state`, the exact
-- sum's running state and a quantile sketch (0.8% relative accuracy), serialised by
-- tally. Summaries merge whole buckets and read raw rows only at a window's edges.
--
-- Writers never update a rollup: each group commit appends, in the same statement
-- as its raw rows, one row to `rollup_delta` packing its partial aggregates (one per
-- type and minute), with the range of minutes they cover. A background pass (one
-- instance at a time, under an advisory lock) folds the partials into the three
-- levels and deletes them in one transaction; summaries read the levels plus whatever
-- partials are still waiting, so every commit counts exactly once. No index: the
-- table holds about a second of commits, is read whole, and is vacuumed by the pass.
CREATE TABLE rollup_delta (
  minute_lo timestamptz NOT NULL,
  minute_hi timestamptz NOT NULL,
  partials  bytea       NOT NULL
);

-- Minutes are partitioned by day like `metrics`: retention drops them together (and
-- deletes the hours and days past it, 25 rows a type and day, in the same transaction).
CREATE TABLE rollup_minute (
  type     text             NOT NULL,
  bucket   timestamptz      NOT NULL,
  count    bigint           NOT NULL,
  sum      double precision NOT NULL,
  min      double precision NOT NULL,
  max      double precision NOT NULL,
  first_ts timestamptz      NOT NULL,
  last_ts  timestamptz      NOT NULL,
  latest   double precision NOT NULL,
  state    bytea            NOT NULL,
  PRIMARY KEY (type, bucket)
) PARTITION BY RANGE (bucket);
CREATE TABLE rollup_hour (LIKE rollup_minute INCLUDING ALL);
CREATE TABLE rollup_day (LIKE rollup_minute INCLUDING ALL);

-- Rows stored before this migration have no partials: a background pass builds their
-- rollups from the raw rows, one day at a time, oldest first. Rollups cover the times
-- before `watermark`; summaries read raw rows from there on until it reaches infinity.
CREATE TABLE rollup_backfill (
  id        boolean     PRIMARY KEY DEFAULT true CHECK (id),
  watermark timestamptz NOT NULL
);
INSERT INTO rollup_backfill (watermark)
SELECT CASE WHEN EXISTS (SELECT 1 FROM metrics) THEN '-infinity'::timestamptz
            ELSE 'infinity'::timestamptz END;
