-- Runs over time (issue 16): the check that defines done, best-of-N groups, tags, and series of `run --again`.
ALTER TABLE tasks ADD COLUMN check_command TEXT;
ALTER TABLE tasks ADD COLUMN check_tries INTEGER;
-- The last check.ran's result: NULL while none ran, 1 passed, 0 failed.
ALTER TABLE tasks ADD COLUMN check_passed INTEGER;
ALTER TABLE tasks ADD COLUMN group_id INTEGER;
-- Tags as ',a,b,' so that one tag is found with LIKE '%,tag,%'.
ALTER TABLE tasks ADD COLUMN tags TEXT;
ALTER TABLE tasks ADD COLUMN again_of INTEGER;
CREATE INDEX tasks_group ON tasks (group_id) WHERE group_id IS NOT NULL;
CREATE INDEX tasks_created ON tasks (created_at);
-- Counters for stats and compare, kept like the tokens: retries of model calls, approvals asked, compactions, and
-- input tokens read from the prompt cache (input_tokens counts them too).
ALTER TABLE tasks ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN approvals INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN compactions INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
