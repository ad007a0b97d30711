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
    # 2: alert lifecycle and detection history (issue 3).
    #    items.gone_reason: why an item left the listing (removed | moved | superseded |
    #    rolled); only "removed" can raise a disappearance. items.moved_to: the key it moved to.
    #    snapshots.verdict: why a capture is not the page (soft 404, redirect home); NULL if it
    #    is. snapshots.real_change: new publications or a text change, not moves or returns.
    #    targets.state: shrink baselines as JSON. documents: per-document watch state.
    #    replacements: documents replaced in place (new content at the same URL).
    """
ALTER TABLE items ADD COLUMN gone_reason TEXT;
ALTER TABLE items ADD COLUMN moved_to TEXT;
ALTER TABLE snapshots ADD COLUMN verdict TEXT;
ALTER TABLE snapshots ADD COLUMN real_change INTEGER NOT NULL DEFAULT 0;
ALTER TABLE targets ADD COLUMN state TEXT;
CREATE TABLE documents (
    target_id TEXT NOT NULL,
    key TEXT NOT NULL,
    url TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    etag TEXT,
    last_modified TEXT,
    size INTEGER,
    sha256 TEXT,
    status INTEGER,
    error TEXT,
    checked_at TEXT,
    ok_at TEXT,
    changed_at TEXT,
    gone_since TEXT,
    baseline_size INTEGER,
    recent_sizes TEXT,
    PRIMARY KEY (target_id, key)
) WITHOUT ROWID;
CREATE TABLE replacements (
    id INTEGER PRIMARY KEY,
    target_id TEXT NOT NULL,
    key TEXT NOT NULL,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    at TEXT NOT NULL,
    size_before INTEGER,
    size_after INTEGER
);
CREATE INDEX replacements_by_target ON replacements(target_id, at);
CREATE INDEX alerts_by_target ON alerts(target_id, id);
CREATE INDEX items_gone ON items(target_id, gone_since)
""",
]
