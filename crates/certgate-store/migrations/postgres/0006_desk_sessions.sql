-- Sessions of the support desk's users (/desk): the SHA-256 of the session cookie, the desk
-- user, the form token every POST must carry, and when it ends.
CREATE TABLE desk_sessions (
    digest     TEXT PRIMARY KEY,
    desk_user  TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX desk_sessions_expiry ON desk_sessions (expires_at);
