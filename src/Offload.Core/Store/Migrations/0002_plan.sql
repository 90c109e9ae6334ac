-- The agent's plan progress (the last plan.item event's counts), for `ls`; NULL while the task has no plan.
ALTER TABLE tasks ADD COLUMN plan_done INTEGER;
ALTER TABLE tasks ADD COLUMN plan_total INTEGER;
