CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('app', 'offload');

-- One row per task: a projection of its journal, updated in the same transaction as each event.
CREATE TABLE tasks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    title           TEXT    NOT NULL,
    prompt          TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    model           TEXT    NOT NULL,
    engine          TEXT    NOT NULL,
    repo_path       TEXT    NOT NULL,
    base_ref        TEXT    NOT NULL,
    base_commit     TEXT    NOT NULL,
    branch          TEXT    NOT NULL,
    worktree        TEXT    NOT NULL,
    summary         TEXT,
    error           TEXT,
    turns           INTEGER NOT NULL DEFAULT 0,
    input_tokens    INTEGER NOT NULL DEFAULT 0,
    output_tokens   INTEGER NOT NULL DEFAULT 0,
    cost_usd        TEXT    NOT NULL DEFAULT '0',
    attempt         INTEGER NOT NULL DEFAULT 0,
    last_seq        INTEGER NOT NULL DEFAULT 0,
    max_turns       INTEGER,
    max_cost_usd    TEXT,
    timeout_seconds INTEGER,
    session_id      TEXT,
    seen            INTEGER NOT NULL DEFAULT 0,
    discarded       INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT    NOT NULL,
    started_at      TEXT,
    finished_at     TEXT
);
CREATE INDEX tasks_status ON tasks (status);

-- The journal: append-only, gapless seq per task.
CREATE TABLE events (
    task_id INTEGER NOT NULL REFERENCES tasks (id),
    seq     INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    type    TEXT    NOT NULL,
    at      TEXT    NOT NULL,
    data    TEXT    NOT NULL,
    PRIMARY KEY (task_id, seq)
) WITHOUT ROWID;
