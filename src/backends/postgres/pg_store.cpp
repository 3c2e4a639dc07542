#include "backends/postgres/pg_store.hpp"

#include <fmt/format.h>
#include <random>

#include "core/codec.hpp"
#include "core/connect_hint.hpp"
#include "core/record.hpp"
#include "core/validate.hpp"

namespace agentstate::backends::postgres {

using core::CheckDeadline;
using namespace std::chrono_literals;

// WAL volume limits PostgreSQL's commits: compressing from 1 KiB up raised 50 agents'
// critical saves of 30 KB states from 2.3 k/s to 4.0 k/s (bench/pg_anchor.sh).
constexpr std::size_t kPgCompressThreshold = 1024;

namespace {

// Migration N (1-based) brings the schema from version N-1 to N. Each runs in one
// transaction with the version bump. Functions are CREATE OR REPLACE: re-running is safe.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE runs (
  run_id text COLLATE "C" PRIMARY KEY, thread_id text COLLATE "C" NOT NULL, user_id text NOT NULL,
  agent_type text NOT NULL, version bigint NOT NULL, step_count bigint NOT NULL, phase text NOT NULL,
  checkpoint_type text NOT NULL, is_recovery_point boolean NOT NULL, status text NOT NULL,
  saved_at_ms bigint NOT NULL, expires_at_ms bigint NOT NULL, checksum bigint NOT NULL,
  encoding smallint NOT NULL, payload_bytes bigint NOT NULL, payload bytea NOT NULL) WITH (fillfactor = 70);
ALTER TABLE runs ALTER COLUMN payload SET STORAGE EXTERNAL;
CREATE INDEX runs_by_thread ON runs(thread_id, run_id);

CREATE TABLE checkpoints (
  run_id text COLLATE "C" NOT NULL, version bigint NOT NULL, checkpoint_id text NOT NULL, type text NOT NULL,
  is_recovery_point boolean NOT NULL, created_at_ms bigint NOT NULL, expires_at_ms bigint NOT NULL,
  thread_id text NOT NULL, user_id text NOT NULL, agent_type text NOT NULL, step_count bigint NOT NULL,
  phase text NOT NULL, checksum bigint NOT NULL, encoding smallint NOT NULL, payload_bytes bigint NOT NULL,
  payload bytea NOT NULL, PRIMARY KEY (run_id, version));
ALTER TABLE checkpoints ALTER COLUMN payload SET STORAGE EXTERNAL;
CREATE INDEX checkpoints_by_expiry ON checkpoints(expires_at_ms);

-- runs and threads are updated in place on every save: no index on a column that changes
-- (expires_at_ms, version), and room on each page, so updates stay HOT.
CREATE TABLE threads (
  thread_id text COLLATE "C" PRIMARY KEY, run_id text NOT NULL, version bigint NOT NULL,
  updated_at_ms bigint NOT NULL, expires_at_ms bigint NOT NULL) WITH (fillfactor = 70);

-- The run's current version: its live record's, else its newest live checkpoint's, else 0.
CREATE OR REPLACE FUNCTION agentstate_current(p_run text, p_now bigint, OUT cur bigint, OUT live boolean,
                                              OUT st text) AS $$
BEGIN
  SELECT r.version, r.status INTO cur, st FROM runs r WHERE r.run_id = p_run AND r.expires_at_ms > p_now;
  live := FOUND;
  IF NOT live THEN
    SELECT coalesce(max(c.version), 0) INTO cur FROM checkpoints c
     WHERE c.run_id = p_run AND c.expires_at_ms > p_now;
  END IF;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION agentstate_save(
  p_run text, p_thread text, p_user text, p_agent text, p_step bigint, p_phase text, p_ctype text,
  p_rp boolean, p_expected bigint, p_now bigint, p_rec_ex bigint, p_keep boolean, p_cp_rp boolean,
  p_cp_ex bigint, p_th_ex bigint, p_checksum bigint, p_encoding bigint, p_bytes bigint, p_payload bytea,
  p_force bigint, p_at bigint)
RETURNS bigint AS $$
DECLARE c record; v bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_run, 0));
  c := agentstate_current(p_run, p_now);
  IF p_force IS NOT NULL THEN
    -- a put (replication): exactly this version when it is newer, else nothing
    IF p_force <= c.cur THEN RETURN 0; END IF;
    v := p_force;
  ELSE
    IF p_expected IS NOT NULL AND p_expected <> c.cur THEN
      RAISE EXCEPTION 'run % is at version %, expected %', p_run, c.cur, p_expected USING ERRCODE = 'AS409';
    END IF;
    IF c.live AND c.st = 'completed' THEN
      RAISE EXCEPTION 'run % is completed; restore it or start a new run', p_run USING ERRCODE = 'AS410';
    END IF;
    v := c.cur + 1;
  END IF;
  INSERT INTO runs VALUES (p_run, p_thread, p_user, p_agent, v, p_step, p_phase, p_ctype, p_rp, 'active',
                           p_at, p_rec_ex, p_checksum, p_encoding, p_bytes, p_payload)
  ON CONFLICT (run_id) DO UPDATE SET thread_id = EXCLUDED.thread_id, user_id = EXCLUDED.user_id,
    agent_type = EXCLUDED.agent_type, version = EXCLUDED.version, step_count = EXCLUDED.step_count,
    phase = EXCLUDED.phase, checkpoint_type = EXCLUDED.checkpoint_type,
    is_recovery_point = EXCLUDED.is_recovery_point, status = EXCLUDED.status, saved_at_ms = EXCLUDED.saved_at_ms,
    expires_at_ms = EXCLUDED.expires_at_ms, checksum = EXCLUDED.checksum, encoding = EXCLUDED.encoding,
    payload_bytes = EXCLUDED.payload_bytes, payload = EXCLUDED.payload;
  IF p_keep THEN
    INSERT INTO checkpoints VALUES (p_run, v, 'v' || lpad(v::text, 12, '0'), p_ctype, p_cp_rp, p_at, p_cp_ex,
                                    p_thread, p_user, p_agent, p_step, p_phase, p_checksum, p_encoding, p_bytes,
                                    p_payload)
    ON CONFLICT (run_id, version) DO UPDATE SET type = EXCLUDED.type,
      is_recovery_point = EXCLUDED.is_recovery_point, created_at_ms = EXCLUDED.created_at_ms,
      expires_at_ms = EXCLUDED.expires_at_ms, thread_id = EXCLUDED.thread_id, user_id = EXCLUDED.user_id,
      agent_type = EXCLUDED.agent_type, step_count = EXCLUDED.step_count, phase = EXCLUDED.phase,
      checksum = EXCLUDED.checksum, encoding = EXCLUDED.encoding, payload_bytes = EXCLUDED.payload_bytes,
      payload = EXCLUDED.payload;
    PERFORM agentstate_retain(p_run);
  END IF;
  INSERT INTO threads VALUES (p_thread, p_run, v, p_at, p_th_ex)
  ON CONFLICT (thread_id) DO UPDATE SET run_id = EXCLUDED.run_id, version = EXCLUDED.version,
    updated_at_ms = EXCLUDED.updated_at_ms, expires_at_ms = EXCLUDED.expires_at_ms;
  RETURN v;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION agentstate_complete(p_run text, p_now bigint, p_ex bigint) RETURNS integer AS $$
DECLARE s text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_run, 0));
  SELECT r.status INTO s FROM runs r WHERE r.run_id = p_run AND r.expires_at_ms > p_now;
  IF NOT FOUND THEN RAISE EXCEPTION 'run % does not exist', p_run USING ERRCODE = 'AS404'; END IF;
  IF s = 'completed' THEN RETURN 0; END IF;
  UPDATE runs SET status = 'completed', expires_at_ms = p_ex WHERE run_id = p_run;
  RETURN 1;
END $$ LANGUAGE plpgsql;

-- Snapshots the run's record at p_version (the version the caller verified); AS412 when a
-- newer save landed meanwhile. A live checkpoint of that version is returned as it is.
CREATE OR REPLACE FUNCTION agentstate_checkpoint(p_run text, p_version bigint, p_type text, p_now bigint,
                                                 p_ex bigint, p_ex_rp bigint)
RETURNS TABLE(o_id text, o_version bigint, o_type text, o_rp boolean, o_created bigint, o_bytes bigint,
              o_checksum bigint) AS $$
DECLARE r runs%ROWTYPE; rp boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_run, 0));
  SELECT * INTO r FROM runs x WHERE x.run_id = p_run AND x.expires_at_ms > p_now;
  IF NOT FOUND THEN RAISE EXCEPTION 'run % does not exist', p_run USING ERRCODE = 'AS404'; END IF;
  IF r.version <> p_version THEN
    RAISE EXCEPTION 'run % moved to version %', p_run, r.version USING ERRCODE = 'AS412';
  END IF;
  rp := r.is_recovery_point OR p_type = 'recovery';
  INSERT INTO checkpoints VALUES (p_run, r.version, 'v' || lpad(r.version::text, 12, '0'), p_type, rp, p_now,
                                  CASE WHEN rp THEN p_ex_rp ELSE p_ex END, r.thread_id, r.user_id, r.agent_type,
                                  r.step_count, r.phase, r.checksum, r.encoding, r.payload_bytes, r.payload)
  ON CONFLICT (run_id, version) DO UPDATE SET type = EXCLUDED.type,
    is_recovery_point = EXCLUDED.is_recovery_point, created_at_ms = EXCLUDED.created_at_ms,
    expires_at_ms = EXCLUDED.expires_at_ms, thread_id = EXCLUDED.thread_id, user_id = EXCLUDED.user_id,
    agent_type = EXCLUDED.agent_type, step_count = EXCLUDED.step_count, phase = EXCLUDED.phase,
    checksum = EXCLUDED.checksum, encoding = EXCLUDED.encoding, payload_bytes = EXCLUDED.payload_bytes,
    payload = EXCLUDED.payload
  WHERE checkpoints.expires_at_ms <= p_now;
  PERFORM agentstate_retain(p_run);
  RETURN QUERY SELECT c.checkpoint_id, c.version, c.type, c.is_recovery_point, c.created_at_ms, c.payload_bytes,
                      c.checksum
                 FROM checkpoints c WHERE c.run_id = p_run AND c.version = r.version;
END $$ LANGUAGE plpgsql;

-- Makes the checkpoint at p_version the run's latest state again, as a new version.
CREATE OR REPLACE FUNCTION agentstate_restore(p_run text, p_version bigint, p_now bigint, p_ex bigint,
                                              p_ex_rp bigint, p_th_ex bigint) RETURNS bigint AS $$
DECLARE cp checkpoints%ROWTYPE; c record; v bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_run, 0));
  SELECT * INTO cp FROM checkpoints x WHERE x.run_id = p_run AND x.version = p_version AND x.expires_at_ms > p_now;
  IF NOT FOUND THEN RAISE EXCEPTION 'run % has no live checkpoint at version %', p_run, p_version USING ERRCODE = 'AS404'; END IF;
  c := agentstate_current(p_run, p_now);
  v := c.cur + 1;
  INSERT INTO runs VALUES (p_run, cp.thread_id, cp.user_id, cp.agent_type, v, cp.step_count, cp.phase, 'recovery',
                           cp.is_recovery_point, 'active', p_now, CASE WHEN cp.is_recovery_point THEN p_ex_rp ELSE p_ex END,
                           cp.checksum, cp.encoding, cp.payload_bytes, cp.payload)
  ON CONFLICT (run_id) DO UPDATE SET thread_id = EXCLUDED.thread_id, user_id = EXCLUDED.user_id,
    agent_type = EXCLUDED.agent_type, version = EXCLUDED.version, step_count = EXCLUDED.step_count,
    phase = EXCLUDED.phase, checkpoint_type = EXCLUDED.checkpoint_type,
    is_recovery_point = EXCLUDED.is_recovery_point, status = EXCLUDED.status, saved_at_ms = EXCLUDED.saved_at_ms,
    expires_at_ms = EXCLUDED.expires_at_ms, checksum = EXCLUDED.checksum, encoding = EXCLUDED.encoding,
    payload_bytes = EXCLUDED.payload_bytes, payload = EXCLUDED.payload;
  INSERT INTO threads VALUES (cp.thread_id, p_run, v, p_now, p_th_ex)
  ON CONFLICT (thread_id) DO UPDATE SET run_id = EXCLUDED.run_id, version = EXCLUDED.version,
    updated_at_ms = EXCLUDED.updated_at_ms, expires_at_ms = EXCLUDED.expires_at_ms;
  RETURN v;
END $$ LANGUAGE plpgsql;

-- Retention: a run keeps its newest N checkpoints (agentstate.keep_checkpoints, 0 = all).
CREATE OR REPLACE FUNCTION agentstate_retain(p_run text) RETURNS void AS $$
DECLARE n bigint := coalesce(nullif(current_setting('agentstate.keep_checkpoints', true), '')::bigint, 0);
BEGIN
  IF n > 0 THEN
    DELETE FROM checkpoints c WHERE c.run_id = p_run AND c.version < (
      SELECT min(k.version) FROM (SELECT x.version FROM checkpoints x WHERE x.run_id = p_run
                                  ORDER BY x.version DESC LIMIT n) k);
  END IF;
END $$ LANGUAGE plpgsql;

-- Removes up to p_limit expired rows from each table; returns how many went.
CREATE OR REPLACE FUNCTION agentstate_purge(p_now bigint, p_limit bigint) RETURNS bigint AS $$
DECLARE a bigint; b bigint; c bigint;
BEGIN
  DELETE FROM runs WHERE ctid = ANY(ARRAY(SELECT ctid FROM runs WHERE expires_at_ms <= p_now LIMIT p_limit));
  GET DIAGNOSTICS a = ROW_COUNT;
  DELETE FROM checkpoints WHERE ctid = ANY(ARRAY(SELECT ctid FROM checkpoints WHERE expires_at_ms <= p_now LIMIT p_limit));
  GET DIAGNOSTICS b = ROW_COUNT;
  DELETE FROM threads WHERE ctid = ANY(ARRAY(SELECT ctid FROM threads WHERE expires_at_ms <= p_now LIMIT p_limit));
  GET DIAGNOSTICS c = ROW_COUNT;
  RETURN a + b + c;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION agentstate_delete(p_run text, p_now bigint) RETURNS boolean AS $$
DECLARE t text; existed boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_run, 0));
  SELECT r.thread_id INTO t FROM runs r WHERE r.run_id = p_run AND r.expires_at_ms > p_now;
  existed := FOUND;
  DELETE FROM checkpoints WHERE run_id = p_run;
  IF existed THEN DELETE FROM threads WHERE thread_id = t AND run_id = p_run; END IF;
  DELETE FROM runs WHERE run_id = p_run;
  RETURN existed;
END $$ LANGUAGE plpgsql;
)sql",
    // 2: a save that keeps a checkpoint writes its payload once. The run's row has a NULL
    // payload and reads it from the checkpoint at its own version, which outlives it (its
    // expiry is the same or later, and retention always keeps a run's newest checkpoint).
    // Writing 30 KB twice per critical save was a third of its cost (bench/pg_anchor.sh).
    // And the write-behind's records go in one set-based statement per batch.
    R"sql(
ALTER TABLE runs ALTER COLUMN payload DROP NOT NULL;
CREATE OR REPLACE FUNCTION agentstate_save(
  p_run text, p_thread text, p_user text, p_agent text, p_step bigint, p_phase text, p_ctype text,
  p_rp boolean, p_expected bigint, p_now bigint, p_rec_ex bigint, p_keep boolean, p_cp_rp boolean,
  p_cp_ex bigint, p_th_ex bigint, p_checksum bigint, p_encoding bigint, p_bytes bigint, p_payload bytea,
  p_force bigint, p_at bigint)
RETURNS bigint AS $$
DECLARE c record; v bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_run, 0));
  c := agentstate_current(p_run, p_now);
  IF p_force IS NOT NULL THEN
    -- a put (replication): exactly this version when it is newer, else nothing
    IF p_force <= c.cur THEN RETURN 0; END IF;
    v := p_force;
  ELSE
    IF p_expected IS NOT NULL AND p_expected <> c.cur THEN
      RAISE EXCEPTION 'run % is at version %, expected %', p_run, c.cur, p_expected USING ERRCODE = 'AS409';
    END IF;
    IF c.live AND c.st = 'completed' THEN
      RAISE EXCEPTION 'run % is completed; restore it or start a new run', p_run USING ERRCODE = 'AS410';
    END IF;
    v := c.cur + 1;
  END IF;
  -- A save that keeps a checkpoint stores its payload once, in the checkpoint; the run's
  -- row points at it with a NULL payload.
  INSERT INTO runs VALUES (p_run, p_thread, p_user, p_agent, v, p_step, p_phase, p_ctype, p_rp, 'active',
                           p_at, p_rec_ex, p_checksum, p_encoding, p_bytes, CASE WHEN p_keep THEN NULL ELSE p_payload END)
  ON CONFLICT (run_id) DO UPDATE SET thread_id = EXCLUDED.thread_id, user_id = EXCLUDED.user_id,
    agent_type = EXCLUDED.agent_type, version = EXCLUDED.version, step_count = EXCLUDED.step_count,
    phase = EXCLUDED.phase, checkpoint_type = EXCLUDED.checkpoint_type,
    is_recovery_point = EXCLUDED.is_recovery_point, status = EXCLUDED.status, saved_at_ms = EXCLUDED.saved_at_ms,
    expires_at_ms = EXCLUDED.expires_at_ms, checksum = EXCLUDED.checksum, encoding = EXCLUDED.encoding,
    payload_bytes = EXCLUDED.payload_bytes, payload = EXCLUDED.payload;
  IF p_keep THEN
    INSERT INTO checkpoints VALUES (p_run, v, 'v' || lpad(v::text, 12, '0'), p_ctype, p_cp_rp, p_at, p_cp_ex,
                                    p_thread, p_user, p_agent, p_step, p_phase, p_checksum, p_encoding, p_bytes,
                                    p_payload)
    ON CONFLICT (run_id, version) DO UPDATE SET type = EXCLUDED.type,
      is_recovery_point = EXCLUDED.is_recovery_point, created_at_ms = EXCLUDED.created_at_ms,
      expires_at_ms = EXCLUDED.expires_at_ms, thread_id = EXCLUDED.thread_id, user_id = EXCLUDED.user_id,
      agent_type = EXCLUDED.agent_type, step_count = EXCLUDED.step_count, phase = EXCLUDED.phase,
      checksum = EXCLUDED.checksum, encoding = EXCLUDED.encoding, payload_bytes = EXCLUDED.payload_bytes,
      payload = EXCLUDED.payload;
    PERFORM agentstate_retain(p_run);
  END IF;
  INSERT INTO threads VALUES (p_thread, p_run, v, p_at, p_th_ex)
  ON CONFLICT (thread_id) DO UPDATE SET run_id = EXCLUDED.run_id, version = EXCLUDED.version,
    updated_at_ms = EXCLUDED.updated_at_ms, expires_at_ms = EXCLUDED.expires_at_ms;
  RETURN v;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION agentstate_checkpoint(p_run text, p_version bigint, p_type text, p_now bigint,
                                                 p_ex bigint, p_ex_rp bigint)
RETURNS TABLE(o_id text, o_version bigint, o_type text, o_rp boolean, o_created bigint, o_bytes bigint,
              o_checksum bigint) AS $$
DECLARE r runs%ROWTYPE; rp boolean;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_run, 0));
  SELECT * INTO r FROM runs x WHERE x.run_id = p_run AND x.expires_at_ms > p_now;
  IF NOT FOUND THEN RAISE EXCEPTION 'run % does not exist', p_run USING ERRCODE = 'AS404'; END IF;
  IF r.version <> p_version THEN
    RAISE EXCEPTION 'run % moved to version %', p_run, r.version USING ERRCODE = 'AS412';
  END IF;
  rp := r.is_recovery_point OR p_type = 'recovery';
  INSERT INTO checkpoints VALUES (p_run, r.version, 'v' || lpad(r.version::text, 12, '0'), p_type, rp, p_now,
                                  CASE WHEN rp THEN p_ex_rp ELSE p_ex END, r.thread_id, r.user_id, r.agent_type,
                                  r.step_count, r.phase, r.checksum, r.encoding, r.payload_bytes,
                                  coalesce(r.payload, (SELECT x.payload FROM checkpoints x
                                                        WHERE x.run_id = p_run AND x.version = r.version)))
  ON CONFLICT (run_id, version) DO UPDATE SET type = EXCLUDED.type,
    is_recovery_point = EXCLUDED.is_recovery_point, created_at_ms = EXCLUDED.created_at_ms,
    expires_at_ms = EXCLUDED.expires_at_ms, thread_id = EXCLUDED.thread_id, user_id = EXCLUDED.user_id,
    agent_type = EXCLUDED.agent_type, step_count = EXCLUDED.step_count, phase = EXCLUDED.phase,
    checksum = EXCLUDED.checksum, encoding = EXCLUDED.encoding, payload_bytes = EXCLUDED.payload_bytes,
    payload = EXCLUDED.payload
  WHERE checkpoints.expires_at_ms <= p_now;
  PERFORM agentstate_retain(p_run);
  RETURN QUERY SELECT c.checkpoint_id, c.version, c.type, c.is_recovery_point, c.created_at_ms, c.payload_bytes,
                      c.checksum
                 FROM checkpoints c WHERE c.run_id = p_run AND c.version = r.version;
END $$ LANGUAGE plpgsql;

-- Replication of many records that keep no checkpoint (the tiered write-behind) in one
-- statement: each run gets exactly its newest version in the batch when that is newer than
-- its current one (as agentstate_save with p_force does row by row). Returns how many runs
-- were written.
CREATE OR REPLACE FUNCTION agentstate_put_many(
  p_run text[], p_thread text[], p_user text[], p_agent text[], p_version bigint[], p_step bigint[],
  p_phase text[], p_ctype text[], p_rp boolean[], p_at bigint[], p_rec_ex bigint[], p_th_ex bigint[],
  p_checksum bigint[], p_encoding bigint[], p_bytes bigint[], p_payload bytea[], p_now bigint)
RETURNS bigint AS $$
DECLARE n bigint;
BEGIN
  -- The lock a save of each run takes, in one order for every caller (no deadlocks).
  PERFORM pg_advisory_xact_lock(k.h) FROM (SELECT DISTINCT hashtextextended(x, 0) AS h FROM unnest(p_run) x) k
   ORDER BY k.h;
  WITH src AS (
    SELECT DISTINCT ON (u.run_id) u.*
      FROM unnest(p_run, p_thread, p_user, p_agent, p_version, p_step, p_phase, p_ctype, p_rp, p_at, p_rec_ex,
                  p_th_ex, p_checksum, p_encoding, p_bytes, p_payload)
           AS u(run_id, thread_id, user_id, agent_type, version, step_count, phase, ctype, rp, at, rec_ex, th_ex,
                checksum, encoding, bytes, payload)
     ORDER BY u.run_id, u.version DESC
  ), newer AS (
    SELECT s.* FROM src s
     WHERE s.version > coalesce(
             (SELECT r.version FROM runs r WHERE r.run_id = s.run_id AND r.expires_at_ms > p_now),
             (SELECT max(c.version) FROM checkpoints c WHERE c.run_id = s.run_id AND c.expires_at_ms > p_now), 0)
  ), applied AS (
    INSERT INTO runs
    SELECT w.run_id, w.thread_id, w.user_id, w.agent_type, w.version, w.step_count, w.phase, w.ctype, w.rp,
           'active', w.at, w.rec_ex, w.checksum, w.encoding::smallint, w.bytes, w.payload
      FROM newer w
    ON CONFLICT (run_id) DO UPDATE SET thread_id = EXCLUDED.thread_id, user_id = EXCLUDED.user_id,
      agent_type = EXCLUDED.agent_type, version = EXCLUDED.version, step_count = EXCLUDED.step_count,
      phase = EXCLUDED.phase, checkpoint_type = EXCLUDED.checkpoint_type,
      is_recovery_point = EXCLUDED.is_recovery_point, status = EXCLUDED.status, saved_at_ms = EXCLUDED.saved_at_ms,
      expires_at_ms = EXCLUDED.expires_at_ms, checksum = EXCLUDED.checksum, encoding = EXCLUDED.encoding,
      payload_bytes = EXCLUDED.payload_bytes, payload = EXCLUDED.payload
    RETURNING run_id
  ), threads_moved AS (
    -- A thread follows the run written last (by its time) among those applied.
    INSERT INTO threads
    SELECT DISTINCT ON (w.thread_id) w.thread_id, w.run_id, w.version, w.at, w.th_ex
      FROM newer w JOIN applied a ON a.run_id = w.run_id
     ORDER BY w.thread_id, w.at DESC, w.version DESC
    ON CONFLICT (thread_id) DO UPDATE SET run_id = EXCLUDED.run_id, version = EXCLUDED.version,
      updated_at_ms = EXCLUDED.updated_at_ms, expires_at_ms = EXCLUDED.expires_at_ms
  )
  SELECT count(*) INTO n FROM applied;
  RETURN n;
END $$ LANGUAGE plpgsql;
)sql",
    // 3: idempotent saves. The run's row keeps the key of the save that wrote it and the
    // version that save wrote: the key holds only while that is still the row's version, so
    // a restore or a batched put (which leave the key alone) end it without knowing of it.
    // A retried save with the key writes nothing and returns that version again, with
    // o_replayed; the caller compares the checksum.
    R"sql(
ALTER TABLE runs ADD COLUMN IF NOT EXISTS idempotency_key text,
                 ADD COLUMN IF NOT EXISTS idempotency_version bigint;
DROP FUNCTION IF EXISTS agentstate_save(text, text, text, text, bigint, text, text, boolean, bigint, bigint, bigint,
                              boolean, boolean, bigint, bigint, bigint, bigint, bigint, bytea, bigint, bigint);
CREATE OR REPLACE FUNCTION agentstate_save(
  p_run text, p_thread text, p_user text, p_agent text, p_step bigint, p_phase text, p_ctype text,
  p_rp boolean, p_expected bigint, p_now bigint, p_rec_ex bigint, p_keep boolean, p_cp_rp boolean,
  p_cp_ex bigint, p_th_ex bigint, p_checksum bigint, p_encoding bigint, p_bytes bigint, p_payload bytea,
  p_force bigint, p_at bigint, p_key text,
  OUT o_version bigint, OUT o_checksum bigint, OUT o_replayed boolean) AS $$
DECLARE c record; v bigint; k record;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_run, 0));
  c := agentstate_current(p_run, p_now);
  o_replayed := false;
  o_checksum := p_checksum;
  IF p_force IS NOT NULL THEN
    -- a put (replication): exactly this version when it is newer, else nothing
    IF p_force <= c.cur THEN o_version := 0; RETURN; END IF;
    v := p_force;
  ELSE
    IF p_key IS NOT NULL AND c.live THEN
      SELECT r.idempotency_key, r.idempotency_version, r.checksum INTO k FROM runs r WHERE r.run_id = p_run;
      IF k.idempotency_key = p_key AND k.idempotency_version = c.cur THEN
        o_version := c.cur; o_checksum := k.checksum; o_replayed := true; RETURN;
      END IF;
    END IF;
    IF p_expected IS NOT NULL AND p_expected <> c.cur THEN
      RAISE EXCEPTION 'run % is at version %, expected %', p_run, c.cur, p_expected USING ERRCODE = 'AS409';
    END IF;
    IF c.live AND c.st = 'completed' THEN
      RAISE EXCEPTION 'run % is completed; restore it or start a new run', p_run USING ERRCODE = 'AS410';
    END IF;
    v := c.cur + 1;
  END IF;
  -- A save that keeps a checkpoint stores its payload once, in the checkpoint; the run's
  -- row points at it with a NULL payload.
  INSERT INTO runs VALUES (p_run, p_thread, p_user, p_agent, v, p_step, p_phase, p_ctype, p_rp, 'active',
                           p_at, p_rec_ex, p_checksum, p_encoding, p_bytes, CASE WHEN p_keep THEN NULL ELSE p_payload END,
                           p_key, v)
  ON CONFLICT (run_id) DO UPDATE SET thread_id = EXCLUDED.thread_id, user_id = EXCLUDED.user_id,
    agent_type = EXCLUDED.agent_type, version = EXCLUDED.version, step_count = EXCLUDED.step_count,
    phase = EXCLUDED.phase, checkpoint_type = EXCLUDED.checkpoint_type,
    is_recovery_point = EXCLUDED.is_recovery_point, status = EXCLUDED.status, saved_at_ms = EXCLUDED.saved_at_ms,
    expires_at_ms = EXCLUDED.expires_at_ms, checksum = EXCLUDED.checksum, encoding = EXCLUDED.encoding,
    payload_bytes = EXCLUDED.payload_bytes, payload = EXCLUDED.payload,
    idempotency_key = EXCLUDED.idempotency_key, idempotency_version = EXCLUDED.idempotency_version;
  IF p_keep THEN
    INSERT INTO checkpoints VALUES (p_run, v, 'v' || lpad(v::text, 12, '0'), p_ctype, p_cp_rp, p_at, p_cp_ex,
                                    p_thread, p_user, p_agent, p_step, p_phase, p_checksum, p_encoding, p_bytes,
                                    p_payload)
    ON CONFLICT (run_id, version) DO UPDATE SET type = EXCLUDED.type,
      is_recovery_point = EXCLUDED.is_recovery_point, created_at_ms = EXCLUDED.created_at_ms,
      expires_at_ms = EXCLUDED.expires_at_ms, thread_id = EXCLUDED.thread_id, user_id = EXCLUDED.user_id,
      agent_type = EXCLUDED.agent_type, step_count = EXCLUDED.step_count, phase = EXCLUDED.phase,
      checksum = EXCLUDED.checksum, encoding = EXCLUDED.encoding, payload_bytes = EXCLUDED.payload_bytes,
      payload = EXCLUDED.payload;
    PERFORM agentstate_retain(p_run);
  END IF;
  INSERT INTO threads VALUES (p_thread, p_run, v, p_at, p_th_ex)
  ON CONFLICT (thread_id) DO UPDATE SET run_id = EXCLUDED.run_id, version = EXCLUDED.version,
    updated_at_ms = EXCLUDED.updated_at_ms, expires_at_ms = EXCLUDED.expires_at_ms;
  o_version := v;
END $$ LANGUAGE plpgsql;
)sql",
    // Version 4: LangGraph's checkpoint model (PgCheckpoints): checkpoints, channel values
    // once per version, pending writes, each thread's last touch; a function per write.
    R"sql(
CREATE TABLE IF NOT EXISTS lg_checkpoints (
  thread_id text COLLATE "C" NOT NULL, ns text COLLATE "C" NOT NULL,
  checkpoint_id text COLLATE "C" NOT NULL, parent_id text COLLATE "C" NOT NULL,
  checkpoint text NOT NULL, metadata text NOT NULL,
  PRIMARY KEY (thread_id, ns, checkpoint_id));
CREATE INDEX IF NOT EXISTS lg_checkpoints_by_id ON lg_checkpoints (checkpoint_id);
CREATE TABLE IF NOT EXISTS lg_values (
  thread_id text COLLATE "C" NOT NULL, ns text COLLATE "C" NOT NULL, channel text COLLATE "C" NOT NULL,
  version text COLLATE "C" NOT NULL, type text NOT NULL, encoding bigint NOT NULL, bytes bytea NOT NULL,
  checksum bigint NOT NULL, PRIMARY KEY (thread_id, ns, channel, version));
CREATE TABLE IF NOT EXISTS lg_writes (
  thread_id text COLLATE "C" NOT NULL, ns text COLLATE "C" NOT NULL,
  checkpoint_id text COLLATE "C" NOT NULL, task_id text COLLATE "C" NOT NULL, idx bigint NOT NULL,
  task_path text NOT NULL, channel text NOT NULL, type text NOT NULL, encoding bigint NOT NULL,
  bytes bytea NOT NULL, checksum bigint NOT NULL,
  PRIMARY KEY (thread_id, ns, checkpoint_id, task_id, idx));
CREATE TABLE IF NOT EXISTS lg_threads (thread_id text COLLATE "C" PRIMARY KEY, touched_ms bigint NOT NULL);

-- A put: under the thread's lock, the head check (AS409), the new values where absent, the
-- checkpoint (replacing its document and metadata), the thread's touch.
CREATE OR REPLACE FUNCTION agentstate_lg_put(p_thread text, p_ns text, p_id text, p_parent text,
    p_doc text, p_meta text, p_check boolean, p_channels text[], p_versions text[], p_types text[],
    p_encodings bigint[], p_bytes bytea[], p_checksums bigint[], p_now bigint) RETURNS void AS $$
DECLARE v_head text;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_thread || chr(31) || p_ns, 17));
  IF p_check THEN
    SELECT checkpoint_id INTO v_head FROM lg_checkpoints
      WHERE thread_id = p_thread AND ns = p_ns ORDER BY checkpoint_id DESC LIMIT 1;
    IF coalesce(v_head, '') <> p_parent THEN
      RAISE EXCEPTION 'thread %: its newest checkpoint is ''%'', not the parent ''%'' this put names; read the head and continue from it',
        p_thread, coalesce(v_head, ''), p_parent USING ERRCODE = 'AS409';
    END IF;
  END IF;
  INSERT INTO lg_values SELECT p_thread, p_ns, u.c, u.v, u.t, u.e, u.b, u.s
    FROM unnest(p_channels, p_versions, p_types, p_encodings, p_bytes, p_checksums) AS u(c, v, t, e, b, s)
    ON CONFLICT DO NOTHING;
  INSERT INTO lg_checkpoints VALUES (p_thread, p_ns, p_id, p_parent, p_doc, p_meta)
    ON CONFLICT (thread_id, ns, checkpoint_id) DO UPDATE SET parent_id = EXCLUDED.parent_id,
      checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata;
  INSERT INTO lg_threads VALUES (p_thread, p_now)
    ON CONFLICT (thread_id) DO UPDATE SET touched_ms = EXCLUDED.touched_ms;
END $$ LANGUAGE plpgsql;

-- A task's writes to an existing checkpoint (AS404), held against a concurrent delete.
CREATE OR REPLACE FUNCTION agentstate_lg_put_writes(p_thread text, p_ns text, p_id text, p_task text,
    p_path text, p_replace boolean, p_idx bigint[], p_channels text[], p_types text[],
    p_encodings bigint[], p_bytes bytea[], p_checksums bigint[], p_now bigint) RETURNS void AS $$
BEGIN
  PERFORM 1 FROM lg_checkpoints WHERE thread_id = p_thread AND ns = p_ns AND checkpoint_id = p_id FOR SHARE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'thread %: no checkpoint ''%'' in namespace ''%'' to write to (put it first; a deleted thread takes no writes)',
      p_thread, p_id, p_ns USING ERRCODE = 'AS404';
  END IF;
  IF p_replace THEN
    INSERT INTO lg_writes SELECT p_thread, p_ns, p_id, p_task, u.i, p_path, u.c, u.t, u.e, u.b, u.s
      FROM unnest(p_idx, p_channels, p_types, p_encodings, p_bytes, p_checksums) AS u(i, c, t, e, b, s)
      ON CONFLICT (thread_id, ns, checkpoint_id, task_id, idx) DO UPDATE SET task_path = EXCLUDED.task_path,
        channel = EXCLUDED.channel, type = EXCLUDED.type, encoding = EXCLUDED.encoding,
        bytes = EXCLUDED.bytes, checksum = EXCLUDED.checksum;
  ELSE
    INSERT INTO lg_writes SELECT p_thread, p_ns, p_id, p_task, u.i, p_path, u.c, u.t, u.e, u.b, u.s
      FROM unnest(p_idx, p_channels, p_types, p_encodings, p_bytes, p_checksums) AS u(i, c, t, e, b, s)
      ON CONFLICT DO NOTHING;
  END IF;
  INSERT INTO lg_threads VALUES (p_thread, p_now)
    ON CONFLICT (thread_id) DO UPDATE SET touched_ms = EXCLUDED.touched_ms;
END $$ LANGUAGE plpgsql;

-- Copies a thread into a new one: AS409 when the target holds anything, AS404 when the
-- source has nothing. Returns the checkpoints copied.
CREATE OR REPLACE FUNCTION agentstate_lg_copy(p_from text, p_to text, p_now bigint) RETURNS bigint AS $$
DECLARE v_n bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtextextended(p_to, 18));
  IF EXISTS (SELECT 1 FROM lg_threads WHERE thread_id = p_to) THEN
    RAISE EXCEPTION 'thread % already holds checkpoints; copy into a new thread id or delete it first', p_to
      USING ERRCODE = 'AS409';
  END IF;
  INSERT INTO lg_checkpoints SELECT p_to, ns, checkpoint_id, parent_id, checkpoint, metadata
    FROM lg_checkpoints WHERE thread_id = p_from;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  IF v_n = 0 THEN
    RAISE EXCEPTION 'thread % has no checkpoints', p_from USING ERRCODE = 'AS404';
  END IF;
  INSERT INTO lg_values SELECT p_to, ns, channel, version, type, encoding, bytes, checksum
    FROM lg_values WHERE thread_id = p_from;
  INSERT INTO lg_writes SELECT p_to, ns, checkpoint_id, task_id, idx, task_path, channel, type, encoding,
    bytes, checksum FROM lg_writes WHERE thread_id = p_from;
  INSERT INTO lg_threads VALUES (p_to, p_now);
  RETURN v_n;
END $$ LANGUAGE plpgsql;

-- Retention on one thread ('' : all): past its TTL a thread goes whole, else each namespace
-- keeps its newest p_keep (0: all); then the values no remaining checkpoint names.
CREATE OR REPLACE FUNCTION agentstate_lg_prune(p_thread text, p_keep bigint, p_ttl_ms bigint, p_now bigint,
    OUT o_checkpoints bigint, OUT o_values bigint, OUT o_writes bigint, OUT o_threads bigint) AS $$
DECLARE th record; v_c bigint; v_w bigint;
BEGIN
  o_checkpoints := 0; o_values := 0; o_writes := 0; o_threads := 0;
  FOR th IN SELECT thread_id, touched_ms FROM lg_threads WHERE p_thread = '' OR thread_id = p_thread LOOP
    WITH doomed AS (
      SELECT x.ns, x.checkpoint_id FROM (
        SELECT ns, checkpoint_id, row_number() OVER (PARTITION BY ns ORDER BY checkpoint_id DESC) AS r
        FROM lg_checkpoints WHERE thread_id = th.thread_id) x
      WHERE (p_ttl_ms > 0 AND th.touched_ms + p_ttl_ms <= p_now) OR (p_keep > 0 AND x.r > p_keep)),
    dw AS (DELETE FROM lg_writes w USING doomed d
           WHERE w.thread_id = th.thread_id AND w.ns = d.ns AND w.checkpoint_id = d.checkpoint_id RETURNING 1),
    dc AS (DELETE FROM lg_checkpoints c USING doomed d
           WHERE c.thread_id = th.thread_id AND c.ns = d.ns AND c.checkpoint_id = d.checkpoint_id RETURNING 1)
    SELECT (SELECT count(*) FROM dc), (SELECT count(*) FROM dw) INTO v_c, v_w;
    o_checkpoints := o_checkpoints + v_c;
    o_writes := o_writes + v_w;
    WITH used AS (
      SELECT c.ns, cv.key AS channel, cv.value AS version FROM lg_checkpoints c
      CROSS JOIN LATERAL jsonb_each_text(c.checkpoint::jsonb -> 'channel_versions') AS cv
      WHERE c.thread_id = th.thread_id),
    dv AS (DELETE FROM lg_values v WHERE v.thread_id = th.thread_id AND NOT EXISTS (
             SELECT 1 FROM used u WHERE u.ns = v.ns AND u.channel = v.channel AND u.version = v.version)
           RETURNING 1)
    SELECT count(*) INTO v_c FROM dv;
    o_values := o_values + v_c;
    IF NOT EXISTS (SELECT 1 FROM lg_checkpoints WHERE thread_id = th.thread_id) THEN
      DELETE FROM lg_threads WHERE thread_id = th.thread_id;
      o_threads := o_threads + 1;
    END IF;
  END LOOP;
END $$ LANGUAGE plpgsql;
)sql",
    // Version 5: prune selects threads by id or by id prefix (a tenant's threads), and can
    // delete them whole (LangGraph's "delete" strategy).
    R"sql(
DROP FUNCTION IF EXISTS agentstate_lg_prune(text, bigint, bigint, bigint);
CREATE OR REPLACE FUNCTION agentstate_lg_prune(p_thread text, p_prefix text, p_keep bigint,
    p_ttl_ms bigint, p_all boolean, p_now bigint,
    OUT o_checkpoints bigint, OUT o_values bigint, OUT o_writes bigint, OUT o_threads bigint) AS $$
DECLARE th record; v_c bigint; v_w bigint;
BEGIN
  o_checkpoints := 0; o_values := 0; o_writes := 0; o_threads := 0;
  FOR th IN SELECT thread_id, touched_ms FROM lg_threads
      WHERE CASE WHEN p_thread <> '' THEN thread_id = p_thread ELSE starts_with(thread_id, p_prefix) END LOOP
    WITH doomed AS (
      SELECT x.ns, x.checkpoint_id FROM (
        SELECT ns, checkpoint_id, row_number() OVER (PARTITION BY ns ORDER BY checkpoint_id DESC) AS r
        FROM lg_checkpoints WHERE thread_id = th.thread_id) x
      WHERE p_all OR (p_ttl_ms > 0 AND th.touched_ms + p_ttl_ms <= p_now) OR (p_keep > 0 AND x.r > p_keep)),
    dw AS (DELETE FROM lg_writes w USING doomed d
           WHERE w.thread_id = th.thread_id AND w.ns = d.ns AND w.checkpoint_id = d.checkpoint_id RETURNING 1),
    dc AS (DELETE FROM lg_checkpoints c USING doomed d
           WHERE c.thread_id = th.thread_id AND c.ns = d.ns AND c.checkpoint_id = d.checkpoint_id RETURNING 1)
    SELECT (SELECT count(*) FROM dc), (SELECT count(*) FROM dw) INTO v_c, v_w;
    o_checkpoints := o_checkpoints + v_c;
    o_writes := o_writes + v_w;
    WITH used AS (
      SELECT c.ns, cv.key AS channel, cv.value AS version FROM lg_checkpoints c
      CROSS JOIN LATERAL jsonb_each_text(c.checkpoint::jsonb -> 'channel_versions') AS cv
      WHERE c.thread_id = th.thread_id),
    dv AS (DELETE FROM lg_values v WHERE v.thread_id = th.thread_id AND NOT EXISTS (
             SELECT 1 FROM used u WHERE u.ns = v.ns AND u.channel = v.channel AND u.version = v.version)
           RETURNING 1)
    SELECT count(*) INTO v_c FROM dv;
    o_values := o_values + v_c;
    IF NOT EXISTS (SELECT 1 FROM lg_checkpoints WHERE thread_id = th.thread_id) THEN
      DELETE FROM lg_threads WHERE thread_id = th.thread_id;
      o_threads := o_threads + 1;
    END IF;
  END LOOP;
END $$ LANGUAGE plpgsql;
)sql",
    // Version 6: LangGraph's delete_for_runs, the checkpoints whose metadata names one of
    // the runs (a string run_id) among the threads a prefix selects.
    R"sql(
CREATE OR REPLACE FUNCTION agentstate_lg_delete_runs(p_prefix text, p_runs text[],
    OUT o_checkpoints bigint, OUT o_values bigint, OUT o_writes bigint, OUT o_threads bigint) AS $$
DECLARE v_threads text[]; v_t text; v_n bigint;
BEGIN
  o_checkpoints := 0; o_values := 0; o_writes := 0; o_threads := 0;
  WITH doomed AS (
    SELECT thread_id, ns, checkpoint_id FROM lg_checkpoints
    WHERE starts_with(thread_id, p_prefix) AND jsonb_typeof(metadata::jsonb -> 'run_id') = 'string'
      AND metadata::jsonb ->> 'run_id' = ANY (p_runs)),
  dw AS (DELETE FROM lg_writes w USING doomed d
         WHERE w.thread_id = d.thread_id AND w.ns = d.ns AND w.checkpoint_id = d.checkpoint_id RETURNING 1),
  dc AS (DELETE FROM lg_checkpoints c USING doomed d
         WHERE c.thread_id = d.thread_id AND c.ns = d.ns AND c.checkpoint_id = d.checkpoint_id
         RETURNING c.thread_id)
  SELECT (SELECT count(*) FROM dc), (SELECT count(*) FROM dw), (SELECT array_agg(DISTINCT thread_id) FROM dc)
    INTO o_checkpoints, o_writes, v_threads;
  FOREACH v_t IN ARRAY coalesce(v_threads, '{}') LOOP
    WITH used AS (
      SELECT c.ns, cv.key AS channel, cv.value AS version FROM lg_checkpoints c
      CROSS JOIN LATERAL jsonb_each_text(c.checkpoint::jsonb -> 'channel_versions') AS cv
      WHERE c.thread_id = v_t),
    dv AS (DELETE FROM lg_values v WHERE v.thread_id = v_t AND NOT EXISTS (
             SELECT 1 FROM used u WHERE u.ns = v.ns AND u.channel = v.channel AND u.version = v.version)
           RETURNING 1)
    SELECT count(*) INTO v_n FROM dv;
    o_values := o_values + v_n;
    IF NOT EXISTS (SELECT 1 FROM lg_checkpoints WHERE thread_id = v_t) THEN
      DELETE FROM lg_threads WHERE thread_id = v_t;
      o_threads := o_threads + 1;
    END IF;
  END LOOP;
END $$ LANGUAGE plpgsql;
)sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

std::string TrimmedError(PGconn* c) { return OneLine(c ? PQerrorMessage(c) : "out of memory"); }

Result<StateRecord> RecordFrom(const PGresult* r, int row, const std::string& run_id,
                               std::size_t max_payload) {
  // version thread user agent step phase ctype rp status saved checksum encoding payload
  StateRecord rec;
  rec.run_id = run_id;
  rec.version = GetInt8(r, row, 0);
  rec.thread_id = GetBytes(r, row, 1);
  rec.user_id = GetBytes(r, row, 2);
  rec.agent_type = GetBytes(r, row, 3);
  rec.step_count = GetInt8(r, row, 4);
  rec.phase = GetBytes(r, row, 5);
  auto type = ParseCheckpointType(GetBytes(r, row, 6));
  if (!type)
    return Error(StatusCode::kCorruption,
                 fmt::format("run {}: stored checkpoint type is unreadable", run_id));
  rec.checkpoint_type = *type;
  rec.is_recovery_point = GetBool(r, row, 7);
  rec.status = GetBytes(r, row, 8) == "completed" ? RunStatus::kCompleted : RunStatus::kActive;
  rec.saved_at = core::FromUnixMillis(GetInt8(r, row, 9));
  rec.checksum = static_cast<uint64_t>(GetInt8(r, row, 10));
  const int64_t enc = GetInt8(r, row, 11);
  if (enc != 0 && enc != 1)
    return Error(StatusCode::kCorruption, fmt::format("run {}: unknown encoding {}", run_id, enc));
  auto payload = core::DecodeVerified(static_cast<core::Encoding>(enc), GetBytes(r, row, 12),
                                      rec.checksum, max_payload, fmt::format("run {}", run_id));
  if (!payload) return Error(payload.error());
  rec.payload = std::move(*payload);
  if (PQnfields(r) > 13) rec.idempotency_key = GetBytes(r, row, 13);  // "" when NULL
  return rec;
}

// The run's own payload, or (NULL: it was saved with a checkpoint) its checkpoint's.
constexpr const char* kRecordColumns =
    "r.version, r.thread_id, r.user_id, r.agent_type, r.step_count, r.phase, r.checkpoint_type, "
    "r.is_recovery_point, r.status, r.saved_at_ms, r.checksum, r.encoding::bigint, "
    "coalesce(r.payload, c.payload), "
    "CASE WHEN r.idempotency_version = r.version THEN r.idempotency_key END";

CheckpointInfo CheckpointFrom(const PGresult* r, int row, const std::string& run_id) {
  // id version type rp created bytes checksum
  CheckpointInfo c;
  c.checkpoint_id = GetBytes(r, row, 0);
  c.run_id = run_id;
  c.version = GetInt8(r, row, 1);
  c.type = ParseCheckpointType(GetBytes(r, row, 2)).value_or(CheckpointType::kManual);
  c.is_recovery_point = GetBool(r, row, 3);
  c.created_at = core::FromUnixMillis(GetInt8(r, row, 4));
  c.payload_bytes = static_cast<uint64_t>(GetInt8(r, row, 5));
  c.checksum = static_cast<uint64_t>(GetInt8(r, row, 6));
  return c;
}

}  // namespace

Status Migrate(const PgOptions& o) {
  const std::string timeout_s = std::to_string(
      std::max<int64_t>(1, std::chrono::ceil<std::chrono::seconds>(o.connect_timeout).count()));
  const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
  const char* values[] = {o.conninfo.c_str(), timeout_s.c_str(), "agentstate-migrate", nullptr};
  std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdbParams(keys, values, 1), &PQfinish);
  if (!c || PQstatus(c.get()) != CONNECTION_OK) {
    const std::string why = TrimmedError(c.get());
    return Status(StatusCode::kUnavailable,
                  fmt::format("cannot use postgresql at {}: {}; {}", o.redacted_uri, why,
                              core::ConnectHint(why)));
  }
  auto exec = [&](const std::string& sql,
                  std::vector<std::string> params = {}) -> Result<PgResult> {
    std::vector<const char*> v;
    for (const auto& p : params) v.push_back(p.c_str());
    PgResult r(PQexecParams(c.get(), sql.c_str(), static_cast<int>(v.size()), nullptr, v.data(),
                            nullptr, nullptr, 0));
    const auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      return Error(StatusCode::kUnavailable,
                   fmt::format("postgresql at {}: migrating schema {}: {}", o.redacted_uri,
                               o.schema, OneLine(PQresultErrorMessage(r.get()))));
    }
    return r;
  };
  // Everything in one transaction, with the settings and the lock its own: nothing lives in
  // the session, so a pooler in transaction mode (pgbouncer) may stand between. One migrator
  // at a time per schema, across processes; a failure leaves the schema as it was.
  auto body = [&]() -> Status {
    if (auto r = exec("BEGIN"); !r) return r.error();
    if (auto r = exec("SELECT set_config('search_path', $1, true), "
                      "set_config('client_min_messages', 'warning', true)",
                      {o.schema + ",public"});
        !r)
      return r.error();
    if (auto r = exec("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                      {"agentstate:" + o.schema});
        !r)
      return r.error();
    if (auto r = exec(fmt::format("CREATE SCHEMA IF NOT EXISTS \"{}\"", o.schema)); !r)
      return r.error();
    if (auto r = exec("CREATE TABLE IF NOT EXISTS agentstate_schema (version integer NOT NULL)");
        !r)
      return r.error();
    auto cur = exec("SELECT version FROM agentstate_schema");
    if (!cur) return cur.error();
    int version = PQntuples(cur->get()) > 0 ? std::atoi(PQgetvalue(cur->get(), 0, 0)) : 0;
    if (PQntuples(cur->get()) == 0) {
      if (auto r = exec("INSERT INTO agentstate_schema VALUES (0)"); !r) return r.error();
    }
    if (version > kSchemaVersion) {
      return Status(
          StatusCode::kInvalidArgument,
          fmt::format(
              "postgresql at {}: schema {} is at version {}, newer than this build's {}; use a "
              "newer agentstate (the schema is never downgraded)",
              o.redacted_uri, o.schema, version, kSchemaVersion));
    }
    for (int v = version; v < kSchemaVersion; ++v) {
      const std::string step =
          fmt::format("{} UPDATE agentstate_schema SET version = {};", kMigrations[v], v + 1);
      PgResult r(PQexec(c.get(), step.c_str()));
      if (PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
        return Status(
            StatusCode::kUnavailable,
            fmt::format("postgresql at {}: migration {} of schema {} failed: {}", o.redacted_uri,
                        v + 1, o.schema, OneLine(PQresultErrorMessage(r.get()))));
      }
    }
    if (auto r = exec("COMMIT"); !r) return r.error();
    return Status();
  };
  Status s = body();
  if (!s.ok()) PgResult rollback(PQexec(c.get(), "ROLLBACK"));
  return s;
}

Result<std::string> SynchronousCommit(const PgOptions& o) {
  const char* keys[] = {"dbname", "application_name", nullptr};
  const char* values[] = {o.conninfo.c_str(), "agentstate-settings", nullptr};
  std::unique_ptr<PGconn, decltype(&PQfinish)> c(PQconnectdbParams(keys, values, 1), &PQfinish);
  if (!c || PQstatus(c.get()) != CONNECTION_OK) {
    return Error(StatusCode::kUnavailable,
                 fmt::format("postgresql at {}: {}", o.redacted_uri, TrimmedError(c.get())));
  }
  PgResult r(PQexec(c.get(), "SHOW synchronous_commit"));
  if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || PQntuples(r.get()) != 1) {
    return Error(StatusCode::kUnavailable,
                 fmt::format("postgresql at {}: SHOW synchronous_commit: {}", o.redacted_uri,
                             OneLine(PQresultErrorMessage(r.get()))));
  }
  return std::string(PQgetvalue(r.get(), 0, 0));
}

PgStore::PgStore(PgOptions client_options, StoreOptions options) : options_(std::move(options)) {
  client_ =
      std::make_unique<PgClient>(std::move(client_options), [this] { return WarmupStatements(); });
}

// Each new session's first batch, one transaction that leaves nothing behind: a run no caller
// can name (ids are printable text) saved as a critical checkpoint six times, written behind
// six times, then deleted. A new backend compiles the store's functions on their first call
// and plans each of their statements afresh for the first five: without this, the first of
// latency_sla_compliance's six measurements on a new process had twice the P50 of the others
// (docs/benchmarks.md). Each session's run is its own (a random part and a count), so that
// warm-ups do not wait on each other's run lock.
std::vector<PgClient::Statement> PgStore::WarmupStatements() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  StateRecord r;
  r.run_id = r.thread_id = fmt::format("\x01warmup-{:016x}-{}", rng(), ++warmup_runs_);
  r.user_id = r.agent_type = r.phase = "warmup";
  r.payload = R"({"warmup": true})";
  r.checksum = core::Checksum(r.payload);
  r.saved_at = core::Now(options_);
  std::vector<PgClient::Statement> stmts;
  constexpr int kCalls = 6;
  r.checkpoint_type = CheckpointType::kCritical;
  for (int i = 0; i < kCalls; ++i)
    stmts.push_back(WriteStatement(r, r.payload, std::nullopt, /*put=*/false));
  r.checkpoint_type = CheckpointType::kAuto;
  for (int i = 1; i <= kCalls; ++i) {
    r.version = kCalls + i;
    stmts.push_back(std::move(PutStatements({r}).front()));
  }
  std::vector<Param> p;
  p.push_back(Text(r.run_id));
  p.push_back(Int8(core::ToUnixMillis(r.saved_at)));
  stmts.push_back({"SELECT agentstate_delete($1, $2)", std::move(p)});
  return stmts;
}

Result<std::unique_ptr<StateStore>> PgStore::Open(const core::ParsedUri& uri,
                                                  const StoreOptions& options) {
  auto o = ParsePgUri(uri);
  if (!o) return Error(o.error());
  if (Status s = Migrate(*o); !s.ok()) return Error(s);
  auto sync = SynchronousCommit(*o);
  if (!sync) return Error(sync.error());
  auto store = std::make_unique<PgStore>(std::move(*o), options);
  store->synchronous_commit_ = std::move(*sync);
  store->langgraph_ = std::make_unique<PgCheckpoints>(*store->client_, store->options_);
  // Ready when it returns: its first callers do not wait behind the sessions' warm-ups.
  // A connection not up by then warms up in the background, as after every reconnect.
  store->client_->AwaitWarm(store->client_->options().connect_timeout);
  return std::unique_ptr<StateStore>(std::move(store));
}

// One call of agentstate_save for `m` (payload in `payload`, unencoded). A save assigns the
// next version (checking `expected`); a put writes m.version when it is newer (0 if not).
PgClient::Statement PgStore::WriteStatement(const StateRecord& m, std::string_view payload,
                                            std::optional<int64_t> expected, bool put) const {
  core::Encoded body =
      core::Encode(payload, options_.compress_threshold_bytes.value_or(kPgCompressThreshold));
  const SystemTime now = core::Now(options_);
  const SystemTime at = put ? m.saved_at : now;
  const bool keep = KeepsCheckpoint(m.checkpoint_type, m.is_recovery_point);
  const bool cp_rp = m.is_recovery_point || m.checkpoint_type == CheckpointType::kRecovery;
  std::vector<Param> p;
  p.reserve(22);
  p.push_back(Text(m.run_id));
  p.push_back(Text(m.thread_id));
  p.push_back(Text(m.user_id));
  p.push_back(Text(m.agent_type));
  p.push_back(Int8(m.step_count));
  p.push_back(Text(m.phase));
  p.push_back(Text(Name(m.checkpoint_type)));
  p.push_back(Bool(m.is_recovery_point));
  p.push_back(expected ? Int8(*expected) : NullInt8());
  p.push_back(Int8(core::ToUnixMillis(now)));
  p.push_back(Int8(core::ExpiryMillis(options_.ttl, RunStatus::kActive, m.is_recovery_point, at)));
  p.push_back(Bool(keep));
  p.push_back(Bool(cp_rp));
  p.push_back(Int8(core::ExpiryMillis(options_.ttl, RunStatus::kActive, cp_rp, at)));
  p.push_back(Int8(core::ExpiryMillis(options_.ttl, RunStatus::kActive, false, at)));
  p.push_back(Int8(static_cast<int64_t>(m.checksum)));
  p.push_back(Int8(static_cast<int64_t>(body.encoding)));
  p.push_back(Int8(static_cast<int64_t>(payload.size())));
  p.push_back(Param{17, std::move(body.bytes), false});
  p.push_back(put ? Int8(m.version) : NullInt8());
  p.push_back(Int8(core::ToUnixMillis(at)));
  p.push_back(m.idempotency_key.empty() ? Param{25, {}, true} : Text(m.idempotency_key));
  return {
      "SELECT * FROM agentstate_save($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,"
      "$18,$19,$20,$21,$22)",
      std::move(p)};
}

Awaitable<Result<PgResult>> PgStore::WriteRecord(const StateRecord& m, std::string_view payload,
                                                 std::optional<int64_t> expected, bool put,
                                                 Deadline deadline) {
  PgClient::Statement st = WriteStatement(m, payload, expected, put);
  co_return co_await client_->Run(std::move(st.sql), std::move(st.params), deadline,
                                  put ? "put" : "save");
}

Awaitable<Result<SaveAck>> PgStore::Save(SaveRequest req, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "save"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateSave(req, options_); !s.ok()) co_return Error(s);
  const uint64_t checksum = core::Checksum(req.payload);
  // The version is the server's (the save function assigns it).
  StateRecord m = core::RecordOf(std::move(req), 0, checksum, {});
  auto r = co_await WriteRecord(m, req.payload, req.expected_version, /*put=*/false, deadline);
  if (!r) {
    if (r.error().code() == StatusCode::kConflict) ++conflicts_;
    co_return Error(r.error());
  }
  if (PQntuples(r->get()) != 1)
    co_return Error(StatusCode::kInternal, "postgresql save: no version returned");
  if (GetBool(r->get(), 0, 2)) {
    co_return *core::Replay(m.run_id, m.idempotency_key, m.checksum, m.idempotency_key,
                            GetInt8(r->get(), 0, 0),
                            static_cast<uint64_t>(GetInt8(r->get(), 0, 1)));
  }
  ++saves_;
  const SaveAck ack{GetInt8(r->get(), 0, 0), m.checksum};
  co_await MaybePurge(deadline);
  co_return ack;
}

// Expired rows are invisible at once and removed here: at most once a minute (by the
// store's clock), by whichever save comes along, at most 1000 rows per table.
Awaitable<void> PgStore::MaybePurge(Deadline deadline) {
  const int64_t now_ms = core::ToUnixMillis(core::Now(options_));
  int64_t due = next_purge_ms_.load();
  if (now_ms < due || !next_purge_ms_.compare_exchange_strong(due, now_ms + 60000)) co_return;
  std::vector<Param> p;
  p.push_back(Int8(now_ms));
  p.push_back(Int8(1000));
  auto r =
      co_await client_->Run("SELECT agentstate_purge($1, $2)", std::move(p), deadline, "purge");
  if (r && PQntuples(r->get()) == 1) purged_ += static_cast<uint64_t>(GetInt8(r->get(), 0, 0));
}

Awaitable<Result<bool>> PgStore::Put(StateRecord record, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "put"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidatePut(record, options_); !s.ok()) co_return Error(s);
  auto r = co_await WriteRecord(record, record.payload, std::nullopt, /*put=*/true, deadline);
  if (!r) co_return Error(r.error());
  if (PQntuples(r->get()) != 1)
    co_return Error(StatusCode::kInternal, "postgresql put: no version returned");
  const bool applied = GetInt8(r->get(), 0, 0) > 0;
  if (applied) ++saves_;
  co_return applied;
}

// Records that keep a checkpoint go row by row (agentstate_save); the others, the tiered
// write-behind's auto saves, in one agentstate_put_many statement, last. `records` are
// validated.
std::vector<PgClient::Statement> PgStore::PutStatements(
    const std::vector<StateRecord>& records) const {
  std::vector<PgClient::Statement> stmts;
  enum {
    kRun,
    kThread,
    kUser,
    kAgent,
    kVersion,
    kStep,
    kPhase,
    kType,
    kRp,
    kAt,
    kRecEx,
    kThEx,
    kChecksum,
    kEncoding,
    kBytes,
    kPayload,
    kColumns
  };
  std::vector<std::vector<Param>> columns(kColumns);
  for (const auto& r : records) {
    if (KeepsCheckpoint(r.checkpoint_type, r.is_recovery_point)) {
      stmts.push_back(WriteStatement(r, r.payload, std::nullopt, /*put=*/true));
      continue;
    }
    // Background copies: the client's CPU is what they cost, so the fast level.
    core::Encoded body =
        core::Encode(r.payload, options_.compress_threshold_bytes.value_or(kPgCompressThreshold),
                     core::kZstdFastLevel);
    columns[kRun].push_back(Text(r.run_id));
    columns[kThread].push_back(Text(r.thread_id));
    columns[kUser].push_back(Text(r.user_id));
    columns[kAgent].push_back(Text(r.agent_type));
    columns[kVersion].push_back(Int8(r.version));
    columns[kStep].push_back(Int8(r.step_count));
    columns[kPhase].push_back(Text(r.phase));
    columns[kType].push_back(Text(Name(r.checkpoint_type)));
    columns[kRp].push_back(Bool(r.is_recovery_point));
    columns[kAt].push_back(Int8(core::ToUnixMillis(r.saved_at)));
    columns[kRecEx].push_back(Int8(
        core::ExpiryMillis(options_.ttl, RunStatus::kActive, r.is_recovery_point, r.saved_at)));
    columns[kThEx].push_back(
        Int8(core::ExpiryMillis(options_.ttl, RunStatus::kActive, false, r.saved_at)));
    columns[kChecksum].push_back(Int8(static_cast<int64_t>(r.checksum)));
    columns[kEncoding].push_back(Int8(static_cast<int64_t>(body.encoding)));
    columns[kBytes].push_back(Int8(static_cast<int64_t>(r.payload.size())));
    columns[kPayload].push_back(Param{kByteaOid, std::move(body.bytes), false});
  }
  if (!columns[kRun].empty()) {
    std::vector<Param> p;
    for (const auto& c : columns) p.push_back(ArrayOf(c, c.front().type));
    p.push_back(Int8(core::ToUnixMillis(core::Now(options_))));
    stmts.push_back(
        {"SELECT agentstate_put_many($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)",
         std::move(p)});
  }
  return stmts;
}

Awaitable<Result<std::size_t>> PgStore::PutMany(std::vector<StateRecord> records,
                                                Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "put"); !s.ok()) co_return Error(s);
  if (records.empty()) co_return std::size_t{0};
  std::size_t rows = 0;  // results that count one applied record each: the row-by-row ones, first
  for (const auto& r : records) {
    if (Status s = core::ValidatePut(r, options_); !s.ok()) co_return Error(s);
    rows += KeepsCheckpoint(r.checkpoint_type, r.is_recovery_point) ? 1 : 0;
  }
  std::vector<PgClient::Statement> stmts = PutStatements(records);
  auto results = co_await client_->Batch(std::move(stmts), deadline);
  if (!results) co_return Error(results.error());
  std::size_t applied = 0;
  for (std::size_t i = 0; i < results->size(); ++i) {
    const PGresult* res = (*results)[i].get();
    if (PQresultStatus(res) != PGRES_TUPLES_OK) co_return Error(StatusOf(res, "put"));
    if (PQntuples(res) != 1) continue;
    const int64_t n = GetInt8(res, 0, 0);
    applied += i < rows ? (n > 0 ? 1 : 0) : static_cast<std::size_t>(std::max<int64_t>(0, n));
  }
  saves_ += applied;
  co_return applied;
}

Awaitable<Result<std::optional<StateRecord>>> PgStore::Load(std::string run_id, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "load"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  std::vector<Param> p;
  p.push_back(Text(run_id));
  p.push_back(Int8(core::ToUnixMillis(core::Now(options_))));
  auto r = co_await client_->Run(
      fmt::format("SELECT {} FROM runs r LEFT JOIN checkpoints c ON r.payload IS NULL AND "
                  "c.run_id = r.run_id AND c.version = r.version "
                  "WHERE r.run_id = $1 AND r.expires_at_ms > $2",
                  kRecordColumns),
      std::move(p), deadline, "load");
  if (!r) co_return Error(r.error());
  ++loads_;
  if (PQntuples(r->get()) == 0) co_return std::optional<StateRecord>();
  auto rec = RecordFrom(r->get(), 0, run_id, options_.max_payload_bytes);
  if (!rec) {
    if (rec.error().code() == StatusCode::kCorruption) ++corruptions_;
    co_return Error(rec.error());
  }
  co_return std::optional<StateRecord>(std::move(*rec));
}

Awaitable<Result<bool>> PgStore::Delete(std::string run_id, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "delete"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  std::vector<Param> p;
  p.push_back(Text(run_id));
  p.push_back(Int8(core::ToUnixMillis(core::Now(options_))));
  auto r =
      co_await client_->Run("SELECT agentstate_delete($1, $2)", std::move(p), deadline, "delete");
  if (!r) co_return Error(r.error());
  co_return PQntuples(r->get()) == 1 && GetBool(r->get(), 0, 0);
}

Awaitable<Result<uint64_t>> PgStore::DeletePrefix(std::string prefix, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "delete_prefix"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateDeletePrefix(prefix); !s.ok()) co_return Error(s);
  std::vector<Param> p;
  p.push_back(Text(prefix));
  p.push_back(Int8(core::ToUnixMillis(core::Now(options_))));
  // One statement, so one transaction: every data-modifying WITH runs, referenced or not.
  auto r = co_await client_->Run(
      "WITH r AS (DELETE FROM runs WHERE starts_with(run_id, $1) RETURNING expires_at_ms), "
      "c AS (DELETE FROM checkpoints WHERE starts_with(run_id, $1)), "
      "t AS (DELETE FROM threads WHERE starts_with(thread_id, $1)) "
      "SELECT count(*) FROM r WHERE expires_at_ms > $2",
      std::move(p), deadline, "delete_prefix");
  if (!r) co_return Error(r.error());
  co_return PQntuples(r->get()) == 1 ? static_cast<uint64_t>(GetInt8(r->get(), 0, 0)) : 0;
}

Awaitable<Done> PgStore::Complete(std::string run_id, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "complete"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  const SystemTime now = core::Now(options_);
  std::vector<Param> p;
  p.push_back(Text(run_id));
  p.push_back(Int8(core::ToUnixMillis(now)));
  p.push_back(Int8(core::ExpiryMillis(options_.ttl, RunStatus::kCompleted, false, now)));
  auto r = co_await client_->Run("SELECT agentstate_complete($1, $2, $3)", std::move(p), deadline,
                                 "complete");
  if (!r) co_return Error(r.error());
  co_return Done();
}

Awaitable<Result<CheckpointInfo>> PgStore::Checkpoint(std::string run_id, CheckpointType type,
                                                      Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "checkpoint"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  // Verify the bytes first, then snapshot exactly that version (3 tries if saves race it).
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto cur = co_await Load(run_id, deadline);
    if (!cur) co_return Error(cur.error());
    if (!*cur) co_return Error(StatusCode::kNotFound, fmt::format("run {} does not exist", run_id));
    const SystemTime now = core::Now(options_);
    std::vector<Param> p;
    p.push_back(Text(run_id));
    p.push_back(Int8((*cur)->version));
    p.push_back(Text(Name(type)));
    p.push_back(Int8(core::ToUnixMillis(now)));
    p.push_back(Int8(core::ExpiryMillis(options_.ttl, RunStatus::kActive, false, now)));
    p.push_back(Int8(core::ExpiryMillis(options_.ttl, RunStatus::kActive, true, now)));
    auto r = co_await client_->Query("SELECT * FROM agentstate_checkpoint($1, $2, $3, $4, $5, $6)",
                                     std::move(p), deadline);
    if (!r) co_return Error(r.error());
    if (PQresultStatus(r->get()) != PGRES_TUPLES_OK) {
      if (SqlState(r->get()) == "AS412") continue;
      co_return Error(StatusOf(r->get(), "checkpoint"));
    }
    if (PQntuples(r->get()) != 1)
      co_return Error(StatusCode::kInternal, "postgresql checkpoint: no row returned");
    co_return CheckpointFrom(r->get(), 0, run_id);
  }
  co_return Error(
      StatusCode::kConflict,
      fmt::format("run {} changed during each of 3 checkpoint attempts; retry", run_id));
}

Awaitable<Result<std::vector<CheckpointInfo>>> PgStore::ListCheckpoints(std::string run_id,
                                                                        Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "list_checkpoints"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  std::vector<Param> p;
  p.push_back(Text(run_id));
  p.push_back(Int8(core::ToUnixMillis(core::Now(options_))));
  auto r = co_await client_->Run(
      "SELECT checkpoint_id, version, type, is_recovery_point, created_at_ms, payload_bytes, "
      "checksum "
      "FROM checkpoints WHERE run_id = $1 AND expires_at_ms > $2 ORDER BY version",
      std::move(p), deadline, "list_checkpoints");
  if (!r) co_return Error(r.error());
  std::vector<CheckpointInfo> out;
  for (int i = 0; i < PQntuples(r->get()); ++i) out.push_back(CheckpointFrom(r->get(), i, run_id));
  co_return out;
}

Awaitable<Result<StateRecord>> PgStore::Restore(std::string run_id,
                                                std::optional<std::string> checkpoint_id,
                                                Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "restore"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("run_id", run_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  auto not_found = [&] {
    return Error(StatusCode::kNotFound,
                 checkpoint_id ? fmt::format("run {} has no checkpoint {}", run_id, *checkpoint_id)
                               : fmt::format("run {} has no checkpoints", run_id));
  };
  // 1. Read and verify the checkpoint (rows never change once written).
  std::vector<Param> p;
  p.push_back(Text(run_id));
  p.push_back(Int8(core::ToUnixMillis(core::Now(options_))));
  p.push_back(checkpoint_id ? Text(*checkpoint_id) : Param{25, {}, true});
  auto snap = co_await client_->Run(
      "SELECT version, thread_id, user_id, agent_type, step_count, phase, 'recovery', "
      "is_recovery_point, 'active', "
      "created_at_ms, checksum, encoding::bigint, payload FROM checkpoints "
      "WHERE run_id = $1 AND expires_at_ms > $2 AND ($3::text IS NULL OR checkpoint_id = $3) "
      "ORDER BY version DESC LIMIT 1",
      std::move(p), deadline, "restore");
  if (!snap) co_return Error(snap.error());
  if (PQntuples(snap->get()) == 0) co_return not_found();
  auto rec = RecordFrom(snap->get(), 0, run_id, options_.max_payload_bytes);
  if (!rec) {
    if (rec.error().code() == StatusCode::kCorruption) ++corruptions_;
    co_return Error(rec.error());
  }
  StateRecord out = std::move(*rec);
  // 2. Make it the latest version.
  const SystemTime now = core::Now(options_);
  std::vector<Param> w;
  w.push_back(Text(run_id));
  w.push_back(Int8(out.version));
  w.push_back(Int8(core::ToUnixMillis(now)));
  w.push_back(Int8(core::ExpiryMillis(options_.ttl, RunStatus::kActive, false, now)));
  w.push_back(Int8(core::ExpiryMillis(options_.ttl, RunStatus::kActive, true, now)));
  w.push_back(Int8(core::ExpiryMillis(options_.ttl, RunStatus::kActive, false, now)));
  auto r = co_await client_->Run("SELECT agentstate_restore($1, $2, $3, $4, $5, $6)", std::move(w),
                                 deadline, "restore");
  if (!r) {
    if (r.error().code() == StatusCode::kNotFound) co_return not_found();
    co_return Error(r.error());
  }
  out.version = GetInt8(r->get(), 0, 0);
  out.status = RunStatus::kActive;
  out.checkpoint_type = CheckpointType::kRecovery;
  out.saved_at = now;
  co_return out;
}

Awaitable<Result<std::optional<ThreadContextRecord>>> PgStore::ThreadContext(std::string thread_id,
                                                                             Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "thread_context"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateId("thread_id", thread_id, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  std::vector<Param> p;
  p.push_back(Text(thread_id));
  p.push_back(Int8(core::ToUnixMillis(core::Now(options_))));
  auto r = co_await client_->Run(
      "SELECT run_id, version, updated_at_ms FROM threads WHERE thread_id = $1 AND expires_at_ms > "
      "$2",
      std::move(p), deadline, "thread_context");
  if (!r) co_return Error(r.error());
  if (PQntuples(r->get()) == 0) co_return std::optional<ThreadContextRecord>();
  co_return std::optional<ThreadContextRecord>(
      ThreadContextRecord{thread_id, std::string(GetBytes(r->get(), 0, 0)), GetInt8(r->get(), 0, 1),
                          core::FromUnixMillis(GetInt8(r->get(), 0, 2))});
}

Awaitable<Result<ActiveRunsPage>> PgStore::ActiveRuns(ActiveRunsQuery query, Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "active_runs"); !s.ok()) co_return Error(s);
  if (Status s = core::ValidateActiveRunsQuery(query, options_.max_id_bytes); !s.ok())
    co_return Error(s);
  std::vector<Param> p;
  p.push_back(Text(query.cursor));
  p.push_back(Int8(core::ToUnixMillis(core::Now(options_))));
  p.push_back(query.thread_id ? Text(*query.thread_id) : Param{25, {}, true});
  p.push_back(Int8(static_cast<int64_t>(query.limit) + 1));
  auto r = co_await client_->Run(
      "SELECT run_id, thread_id, user_id, agent_type, version, saved_at_ms FROM runs "
      "WHERE run_id > $1 AND status = 'active' AND expires_at_ms > $2 AND ($3::text IS NULL OR "
      "thread_id = $3) "
      "ORDER BY run_id LIMIT $4",
      std::move(p), deadline, "active_runs");
  if (!r) co_return Error(r.error());
  ActiveRunsPage page;
  const int rows = PQntuples(r->get());
  for (int i = 0; i < rows && page.runs.size() < query.limit; ++i) {
    page.runs.push_back(
        {std::string(GetBytes(r->get(), i, 0)), std::string(GetBytes(r->get(), i, 1)),
         std::string(GetBytes(r->get(), i, 2)), std::string(GetBytes(r->get(), i, 3)),
         GetInt8(r->get(), i, 4), core::FromUnixMillis(GetInt8(r->get(), i, 5))});
  }
  if (rows > static_cast<int>(query.limit)) page.next_cursor = page.runs.back().run_id;
  co_return page;
}

Awaitable<Result<HealthReport>> PgStore::Health(Deadline deadline) {
  if (Status s = CheckDeadline(deadline, "health"); !s.ok()) co_return Error(s);
  const auto start = std::chrono::steady_clock::now();
  auto r = co_await client_->Run("SELECT 1", {}, deadline, "health");
  TierHealth t;
  t.tier = "durable";
  t.backend = Describe();
  t.latency = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  t.healthy = r.has_value();
  if (!r) t.detail = r.error().message();
  HealthReport h;
  h.tiers.push_back(std::move(t));
  co_return h;
}

StoreStats PgStore::Stats() const {
  StoreStats s;
  s.backend = Describe();
  s.values["saves"] = static_cast<double>(saves_.load());
  s.values["loads"] = static_cast<double>(loads_.load());
  s.values["conflicts"] = static_cast<double>(conflicts_.load());
  s.values["corruptions"] = static_cast<double>(corruptions_.load());
  s.values["purged_rows"] = static_cast<double>(purged_.load());
  // Every setting but "off" waits for the local WAL flush before a commit returns.
  s.values["server_synchronous_commit_on"] = synchronous_commit_ == "off" ? 0 : 1;
  const auto c = client_->stats();
  s.values["connections"] = static_cast<double>(c.connections);
  s.values["reconnects"] = static_cast<double>(c.reconnects);
  s.values["warmups"] = static_cast<double>(c.warmups);
  s.values["warmup_failures"] = static_cast<double>(c.warmup_failures);
  c.AppendTo(s.values);
  return s;
}

}  // namespace agentstate::backends::postgres
