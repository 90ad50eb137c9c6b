-- The desk's queue: open tickets by when their request must go (the quote's submit_by, else
-- its deadline; none last), then by age, paged in the database. A ticket's CA is a column so
-- that the queue filters by it before paging.
ALTER TABLE tickets ADD COLUMN provider TEXT NOT NULL DEFAULT '';
ALTER TABLE tickets ADD COLUMN due_at BIGINT;
UPDATE tickets SET provider = COALESCE(json_extract(body, '$.provider'), '');
UPDATE tickets SET due_at = (
    SELECT CAST(ROUND((julianday(COALESCE(json_extract(o.body, '$.quote.submit_by'),
                                          json_extract(o.body, '$.quote.deadline')))
                       - 2440587.5) * 86400000) AS INTEGER)
    FROM operations o WHERE o.id = tickets.operation_id);
CREATE INDEX tickets_queue ON tickets (tenant, status, due_at, created_at, id);
