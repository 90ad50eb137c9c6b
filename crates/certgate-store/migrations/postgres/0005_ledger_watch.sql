-- The refund ledger: a copy of each operation's refund record (the operation's body holds the
-- record itself), written in the transaction of the operation's change, for the ledger's
-- lists, sums and the overdue check.
CREATE TABLE refunds (
    operation_id TEXT PRIMARY KEY,
    tenant       TEXT NOT NULL,
    provider     TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    currency     TEXT NOT NULL,
    status       TEXT NOT NULL,
    due_by       BIGINT,
    overdue      BIGINT NOT NULL,
    mismatch     BIGINT NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX refunds_tenant ON refunds (tenant, operation_id);
CREATE INDEX refunds_due ON refunds (due_by) WHERE overdue = 0;

-- Watched orders: a reseller's order facts, re-quoted for a refund at `next_check_at`.
-- `window_state` is the last refund window and what was told about it; `submit_key` sorts
-- lists (the window's submit_by, or the largest BIGINT when there is none).
CREATE TABLE watched_orders (
    tenant           TEXT NOT NULL,
    id               TEXT NOT NULL,
    provider         TEXT NOT NULL,
    body             TEXT NOT NULL,
    window_state     TEXT NOT NULL,
    submit_by        BIGINT,
    deadline         BIGINT,
    submit_key       BIGINT NOT NULL,
    operation_id     TEXT,
    operation_status TEXT,
    next_check_at    BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX watched_due ON watched_orders (next_check_at);
CREATE INDEX watched_list ON watched_orders (tenant, submit_key, id);
CREATE INDEX watched_operation ON watched_orders (operation_id);
