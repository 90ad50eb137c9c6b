-- Which tenant a CA order in a shared CA account belongs to: the first tenant that started an
-- operation on it or watched it, or the one the operator assigned it to. `account` is the
-- CA service of the shared account (its client and normalized base URL: order ids are unique
-- there), `order_ref` the id the CA knows the order by. The primary key makes two tenants racing for one order end with one
-- owner, on every gateway sharing the database. `sticky` is 1 once an operation or the
-- operator bound it (only a watch's binding is released when the watch is deleted).
CREATE TABLE order_owners (
    account   TEXT NOT NULL,
    order_ref TEXT NOT NULL,
    tenant    TEXT NOT NULL,
    provider  TEXT NOT NULL,
    sticky    BIGINT NOT NULL,
    bound_at  BIGINT NOT NULL,
    PRIMARY KEY (account, order_ref)
);
