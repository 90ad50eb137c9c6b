-- The pruner asks, for each old event, whether a pending or dead delivery still carries it.
CREATE INDEX deliveries_event ON deliveries (event_id, status);
