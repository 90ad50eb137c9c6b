-- /metrics counts operations and open tickets by status: from indexes, not table scans.
CREATE INDEX operations_status ON operations (status);
CREATE INDEX tickets_status ON tickets (status);
