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
