-- Sessions and their transcripts. A transcript is its messages table rows
-- in seq order: each row holds the JSONL line export prints, so the bytes a
-- user sees are the same as the files store's. Nothing here is a second
-- copy of a message: a session's message count and last update are read
-- from its messages.

-- One row per session, live or archived. sid is the internal key: an ID
-- can be archived and then created again.
CREATE TABLE sessions (
    sid          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text   NOT NULL,
    channel      text   NOT NULL,
    created_at   bigint NOT NULL,            -- Unix ms
    forked_from  text   NOT NULL DEFAULT '',
    -- The title lists show: set by Rename (titled_at > 0, Unix ms), or
    -- taken from the first user message in the transaction that appends it.
    title        text   NOT NULL DEFAULT '',
    titled_at    bigint NOT NULL DEFAULT 0,
    archived_at  bigint,                     -- Unix ms; NULL while live
    archive_name text                        -- Archived.File: <id>.<UTC time>[-n].jsonl
);
-- text_pattern_ops: Resolve's LIKE 'prefix%' uses the index whatever the
-- database's collation; equality (and ON CONFLICT) works on it as on any.
CREATE UNIQUE INDEX sessions_live_id ON sessions (id text_pattern_ops) WHERE archived_at IS NULL;
CREATE INDEX sessions_archived_id ON sessions (id text_pattern_ops) WHERE archived_at IS NOT NULL;
CREATE UNIQUE INDEX sessions_archive_name ON sessions (archive_name) WHERE archive_name IS NOT NULL;

-- Append-only: rows are inserted, never updated or deleted while the
-- session lives. seq is the 0-based line index in the transcript, dense
-- per session.
CREATE TABLE messages (
    sid  bigint  NOT NULL REFERENCES sessions (sid),
    seq  integer NOT NULL,
    role text    NOT NULL,   -- '' for an imported line that is no message
    at   bigint  NOT NULL,   -- the message's timestamp, Unix ms
    line text    NOT NULL,   -- the JSONL line, without its newline
    PRIMARY KEY (sid, seq)
);

-- A turn in progress: inserted when a gateway takes a session's lease,
-- deleted with the reply's append. A row whose session's lease is free
-- belongs to a gateway that died: its turn is marked interrupted.
CREATE TABLE turns (
    sid        bigint NOT NULL PRIMARY KEY REFERENCES sessions (sid),
    gateway    text   NOT NULL,
    started_at bigint NOT NULL,               -- Unix ms
    partial    text   NOT NULL DEFAULT ''     -- reply text so far, saved now and then
);

-- Events too big for a NOTIFY payload (8000 bytes): the notice carries the
-- row's id, listeners read it here; rows older than a minute are deleted.
CREATE TABLE relay_spill (
    id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload text        NOT NULL,
    at      timestamptz NOT NULL DEFAULT now()
);
