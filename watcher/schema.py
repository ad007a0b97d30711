"""The store's schema, as an append-only list of migrations.

Never edit a migration that has shipped: add a new one. ``Store`` runs the ones a data dir
has not seen yet, in order, inside one transaction, and records the version in ``meta``.
Statements are separated by ``;`` at the end of a line.
"""

MIGRATIONS: list[str] = [
    # 1: checks, snapshots, items, events, alerts, outbox.
    """
CREATE TABLE targets (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    muted_until TEXT
);
CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY,
    target_id TEXT NOT NULL,
    taken_at TEXT NOT NULL,
    body_sha TEXT,
    page_sha TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    final_url TEXT NOT NULL,
    http_status INTEGER NOT NULL
);
CREATE INDEX snapshots_by_target ON snapshots(target_id, id);
CREATE TABLE checks (
    id INTEGER PRIMARY KEY,
    target_id TEXT NOT NULL,
    checked_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    http_status INTEGER,
    error_kind TEXT,
    error_message TEXT,
    final_url TEXT,
    redirects TEXT,
    etag TEXT,
    last_modified TEXT,
    duration REAL,
    snapshot_id INTEGER REFERENCES snapshots(id)
);
CREATE INDEX checks_by_target ON checks(target_id, id);
CREATE TABLE items (
    target_id TEXT NOT NULL,
    key TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT NOT NULL,
    type TEXT NOT NULL,
    date TEXT,
    date_source TEXT,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    gone_since TEXT,
    first_snapshot INTEGER,
    PRIMARY KEY (target_id, key)
) WITHOUT ROWID;
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    target_id TEXT NOT NULL,
    check_id INTEGER REFERENCES checks(id),
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    subject TEXT NOT NULL,
    title TEXT NOT NULL,
    url TEXT NOT NULL,
    summary TEXT NOT NULL,
    data TEXT
);
CREATE INDEX events_by_target ON events(target_id, id);
CREATE INDEX events_by_time ON events(at);
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    target_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    state TEXT NOT NULL,
    streak INTEGER NOT NULL DEFAULT 0,
    opened_at TEXT NOT NULL,
    fired_at TEXT,
    resolved_at TEXT,
    last_seen_at TEXT,
    last_notified_at TEXT,
    summary TEXT NOT NULL,
    data TEXT,
    slack_ts TEXT
);
CREATE UNIQUE INDEX alerts_open ON alerts(target_id, kind, subject) WHERE state != 'resolved';
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    alert_id INTEGER REFERENCES alerts(id),
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT,
    last_error TEXT,
    state TEXT NOT NULL DEFAULT 'queued',
    sent_at TEXT,
    dedupe_key TEXT UNIQUE
);
CREATE INDEX outbox_queued ON outbox(state, id)
""",
]
