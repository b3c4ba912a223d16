-- Idempotency keys: a write with an `Idempotency-Key` records its key, a digest of its
-- request and its answer in the same statement (one transaction) as its rows, so a retry
-- finds them whichever instance it reaches, and a crash cannot separate the two.
CREATE TABLE idempotency_keys (
  key         text        PRIMARY KEY,
  fingerprint bytea       NOT NULL,
  response    bytea       NOT NULL,
  expires_at  timestamptz NOT NULL
);

-- Expired keys are deleted by the maintenance pass.
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
