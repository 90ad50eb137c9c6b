-- The event a webhook delivery carries (certgate-event-id); NULL for helpdesk pushes.
ALTER TABLE outbox ADD COLUMN event_id TEXT;
