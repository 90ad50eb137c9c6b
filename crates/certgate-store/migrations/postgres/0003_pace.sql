-- The calls sent to each CA account, so that gateways sharing this database share its pace
-- (used on Postgres; a SQLite gateway keeps its pace in memory).
CREATE TABLE pace_accounts (
    account TEXT PRIMARY KEY
);
CREATE TABLE pace_sends (
    account TEXT NOT NULL,
    at      BIGINT NOT NULL
);
CREATE INDEX pace_sends_account ON pace_sends (account, at);
