-- The desk's queue: open tickets by when their request must go (the quote's submit_by, else
-- its deadline; none last), then by age, paged in the database. A ticket's CA is a column so
-- that the queue filters by it before paging.
ALTER TABLE tickets ADD COLUMN provider TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN due_at BIGINT;
UPDATE tickets SET provider = COALESCE(body::jsonb ->> 'provider', '');
UPDATE tickets t SET due_at = (
    SELECT (EXTRACT(EPOCH FROM COALESCE(o.body::jsonb -> 'quote' ->> 'submit_by',
                                        o.body::jsonb -> 'quote' ->> 'deadline')::timestamptz)
            * 1000)::BIGINT
    FROM operations o WHERE o.id = t.operation_id);
CREATE INDEX tickets_queue ON tickets (tenant, status, due_at, created_at, id);
