-- Events: every change a backend is told about, kept for the tenant's feed (GET /v1/events),
-- written in the transaction of the change. `seq` orders a tenant's feed.
CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    tenant     TEXT NOT NULL,
    type       TEXT NOT NULL,
    stream     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX events_tenant ON events (tenant, seq);
CREATE INDEX events_created ON events (created_at);

-- Deliveries of events to a tenant's webhook or to the helpdesk, in order per (target,
-- stream); retried until delivered or `dead` at `expires_at`, never dropped.
CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant           TEXT NOT NULL,
    event_id         TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    target           TEXT NOT NULL,
    stream           TEXT NOT NULL,
    url              TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    last_status_code BIGINT,
    last_error       TEXT,
    next_attempt_at  BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    lease_until      BIGINT,
    created_at       BIGINT NOT NULL,
    delivered_at     BIGINT
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_stream ON deliveries (target, stream, id);
CREATE INDEX deliveries_tenant ON deliveries (tenant, status, id);

-- The outbox's rows carry on as deliveries (72 hours from their creation to be delivered).
INSERT INTO deliveries (tenant, event_id, event_type, target, stream, url, payload, status,
                        attempts, last_error, next_attempt_at, expires_at, created_at, delivered_at)
SELECT tenant,
       COALESCE(event_id, 'evt_outbox_' || id),
       COALESCE(json_extract(payload, '$.type'), 'ticket.opened'),
       CASE WHEN stream LIKE 'helpdesk:%' THEN 'helpdesk' ELSE 'webhook' END,
       stream, url, payload,
       CASE WHEN delivered_at IS NOT NULL THEN 'delivered' WHEN dead = 1 THEN 'dead' ELSE 'pending' END,
       attempts, last_error, next_attempt_at, created_at + 259200000, created_at, delivered_at
FROM outbox ORDER BY id;
DROP TABLE outbox;
