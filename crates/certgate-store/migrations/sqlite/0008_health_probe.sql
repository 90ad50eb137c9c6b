-- One row that /readyz writes: the store is ready only if it takes a write.
CREATE TABLE health_probe (
    id BIGINT PRIMARY KEY,
    at BIGINT NOT NULL
);
