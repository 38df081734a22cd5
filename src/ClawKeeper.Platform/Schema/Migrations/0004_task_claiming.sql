------------------------------------------------------------------------------------------
-- 0004: the orchestrators work the task queue (ClawKeeper.Platform.Tasks.PostgresTaskQueue).
--
--   claim     pending -> assigned    one statement, FOR UPDATE SKIP LOCKED: two claimers (two
--                                    nodes) never take the same task; attempts + 1, claimed_by
--   start     assigned -> running    started_at
--   complete  -> completed           completed_at, one agent_runs row per attempt
--   fail      -> pending (retry)     not_before = now() + backoff, while attempts < max
--             -> failed              completed_at, last_error
--   release   assigned/running -> pending   (a crashed orchestrator's tasks go back to the queue)
--
-- Every transition after the claim is fenced on (id, claimed_by, attempts, status), so the late
-- outcome of an attempt whose task was released (and maybe claimed again) changes nothing.
------------------------------------------------------------------------------------------

-- A pending task is not claimable before this time (retry backoff). NULL = claimable now.
ALTER TABLE tasks ADD COLUMN not_before timestamptz;

-- The claim: an orchestrator's claimable tasks, best first.
CREATE INDEX tasks_claimable_idx ON tasks (orchestrator, priority DESC, created_at, id)
    WHERE status = 'pending';

-- The release: what a claimer (orchestrator of a node) holds.
CREATE INDEX tasks_claimed_by_idx ON tasks (claimed_by)
    WHERE status IN ('assigned', 'running');
