-- A desk session ends when its user's key changes (the key's id it began with no longer
-- matches) and after the desk's idle time without a request (last_seen).
ALTER TABLE desk_sessions ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE desk_sessions ADD COLUMN last_seen BIGINT NOT NULL DEFAULT 0;
