//! Watched orders: a reseller's order facts, re-quoted at `next_check_at` in batches. A batch
//! is claimed, checked and written back in one short transaction; on Postgres `FOR UPDATE SKIP
//! LOCKED` (the executor's claim) lets several gateways share a pass without checking an order
//! twice.

use crate::{Backend, Claim, Claimed, Effects, OrderRef, Result, Store};
use certgate_core::operation::Status;
use certgate_core::TenantId;
use sqlx::{Any, Transaction};

/// `submit_key` of an order without a window: it sorts last.
pub const NO_WINDOW: i64 = i64::MAX;

/// What `put_watched` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Created,
    Updated,
    /// The CA order belongs to another tenant: nothing was written.
    OwnedElsewhere,
}

/// A watched order as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedRow {
    pub tenant: TenantId,
    pub id: String,
    pub provider: String,
    /// The order facts as JSON.
    pub body: String,
    /// The last refund window and what was told about it, as JSON.
    pub window_state: String,
    pub submit_key: i64,
    pub operation_id: Option<String>,
    /// The status of the last operation for this order, if any.
    pub operation_status: Option<Status>,
    pub next_check_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl<'r> sqlx::FromRow<'r, sqlx::any::AnyRow> for WatchedRow {
    /// The columns of `WATCHED_COLUMNS`; a status the gateway does not know is a decode
    /// error naming its column.
    fn from_row(row: &'r sqlx::any::AnyRow) -> std::result::Result<Self, sqlx::Error> {
        use sqlx::Row;
        let status: Option<String> = row.try_get("operation_status")?;
        let operation_status =
            status
                .map(Status::try_from)
                .transpose()
                .map_err(|e| sqlx::Error::ColumnDecode {
                    index: "operation_status".into(),
                    source: e.into(),
                })?;
        Ok(WatchedRow {
            tenant: row.try_get::<String, _>("tenant")?.into(),
            id: row.try_get("id")?,
            provider: row.try_get("provider")?,
            body: row.try_get("body")?,
            window_state: row.try_get("window_state")?,
            submit_key: row.try_get("submit_key")?,
            operation_id: row.try_get("operation_id")?,
            operation_status,
            next_check_at: row.try_get("next_check_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

const WATCHED_COLUMNS: &str = "tenant, id, provider, body, window_state, submit_key, \
     operation_id, operation_status, next_check_at, created_at, updated_at";

/// What a check of a watched order writes: its window and when to check it again.
#[derive(Debug, Clone)]
pub struct WatchedCheck {
    pub window_state: String,
    pub submit_by: Option<i64>,
    pub deadline: Option<i64>,
    pub next_check_at: i64,
}

impl WatchedCheck {
    fn submit_key(&self) -> i64 {
        self.submit_by.unwrap_or(NO_WINDOW)
    }
}

/// A watched order written whole (`PUT /v1/orders/{id}`, an import).
#[derive(Debug, Clone)]
pub struct WatchedWrite {
    pub tenant: TenantId,
    pub id: String,
    pub provider: String,
    pub body: String,
    pub check: WatchedCheck,
    pub now: i64,
}

/// How an operation touches the watched order it is about, written with the operation.
#[derive(Debug, Clone)]
pub enum WatchLink {
    /// A new operation for the tenant's order `order_id` of `provider`.
    Link {
        tenant: TenantId,
        order_id: String,
        provider: String,
        operation_id: String,
        status: Status,
        now: i64,
    },
    /// The operation's status changed; the order's facts after it (JSON), if they changed.
    Follow {
        tenant: TenantId,
        operation_id: String,
        status: Status,
        order: Option<String>,
        now: i64,
    },
}

impl WatchLink {
    /// Writes the link; the order is checked again at once.
    pub(crate) async fn write(
        &self,
        tx: &mut Transaction<'_, Any>,
    ) -> std::result::Result<(), sqlx::Error> {
        match self {
            WatchLink::Link {
                tenant,
                order_id,
                provider,
                operation_id,
                status,
                now,
            } => {
                sqlx::query(
                    "UPDATE watched_orders SET operation_id = $1, operation_status = $2, \
                     next_check_at = $3 WHERE tenant = $4 AND id = $5 AND provider = $6",
                )
                .bind(operation_id)
                .bind(status.as_str())
                .bind(now)
                .bind(tenant.as_str())
                .bind(order_id)
                .bind(provider)
                .execute(&mut **tx)
                .await?;
            }
            WatchLink::Follow {
                tenant,
                operation_id,
                status,
                order,
                now,
            } => {
                sqlx::query(
                    "UPDATE watched_orders SET operation_status = $1, body = COALESCE($2, body), \
                     updated_at = CASE WHEN $2 IS NULL THEN updated_at ELSE $3 END, \
                     next_check_at = $3 WHERE tenant = $4 AND operation_id = $5",
                )
                .bind(status.as_str())
                .bind(order.as_deref())
                .bind(now)
                .bind(tenant.as_str())
                .bind(operation_id)
                .execute(&mut **tx)
                .await?;
            }
        }
        Ok(())
    }
}

/// Which watched orders a list shows, soonest `submit_by` first.
#[derive(Debug, Default)]
pub struct WatchedFilter<'a> {
    /// Only windows still open at this instant (deadline not passed)...
    pub open_at: Option<i64>,
    /// ...whose `submit_by` is at most this.
    pub submit_by_until: Option<i64>,
    pub provider: Option<&'a str>,
    /// Cursor: after this (submit_key, id).
    pub after: Option<(i64, &'a str)>,
    pub limit: i64,
}

/// A check written back: tenant, id, window, submit_by, deadline, submit_key, next check.
const CHECK_COLUMNS: [&str; 7] = [
    "TEXT", "TEXT", "TEXT", "BIGINT", "BIGINT", "BIGINT", "BIGINT",
];
/// The same with the rest of the row (SQLite's upsert): provider, body, created, updated.
const UPSERT_COLUMNS: [&str; 11] = [
    "TEXT", "TEXT", "TEXT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "TEXT", "TEXT", "BIGINT",
    "BIGINT",
];

/// `n` rows of placeholders, one per column of `casts`, each cast to its column's type:
/// numbered from `$1` on Postgres; plain `?` on SQLite, which looks a numbered or named
/// parameter up by walking the whole list (a statement of thousands would take quadratic time).
fn values(backend: Backend, n: usize, casts: &[&str]) -> String {
    let mut sql = String::new();
    for row in 0..n {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        for (c, ty) in casts.iter().enumerate() {
            if c > 0 {
                sql.push(',');
            }
            match backend {
                Backend::Postgres => {
                    sql.push_str(&format!("CAST(${} AS {ty})", row * casts.len() + c + 1))
                }
                Backend::Sqlite => sql.push_str(&format!("CAST(? AS {ty})")),
            }
        }
        sql.push(')');
    }
    sql
}

impl Store {
    pub async fn get_watched(&self, tenant: &TenantId, id: &str) -> Result<Option<WatchedRow>> {
        let row = sqlx::query_as::<_, WatchedRow>(&format!(
            "SELECT {WATCHED_COLUMNS} FROM watched_orders WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// Writes the tenant's watched order `id`: `decide` sees the stored one (if any, held for
    /// the transaction) and returns the order to write with the effects of its check. `claim`
    /// binds its CA order to the tenant (nothing is written if it is another's); `release`
    /// lets go of the order it was about before, if only its watch held it.
    pub async fn put_watched<F>(
        &self,
        tenant: &TenantId,
        id: &str,
        claim: Option<&Claim<'_>>,
        release: Option<OrderRef<'_>>,
        decide: F,
    ) -> Result<Put>
    where
        F: FnOnce(Option<&WatchedRow>) -> (WatchedWrite, Effects),
    {
        let mut tx = self.pool.begin().await?;
        if let Some(claim) = claim {
            if claim.apply(&mut tx).await? == Claimed::Elsewhere {
                tx.rollback().await?;
                return Ok(Put::OwnedElsewhere);
            }
        }
        if let Some(order) = release.filter(|r| claim.is_none_or(|c| c.order != *r)) {
            crate::owners::release_watch(&mut tx, order, tenant).await?;
        }
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let old = sqlx::query_as::<_, WatchedRow>(&format!(
            "SELECT {WATCHED_COLUMNS} FROM watched_orders WHERE tenant = $1 AND id = $2{lock}"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let (w, fx) = decide(old.as_ref());
        let c = &w.check;
        sqlx::query(
            "INSERT INTO watched_orders (tenant, id, provider, body, window_state, submit_by, \
             deadline, submit_key, next_check_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
             ON CONFLICT (tenant, id) DO UPDATE SET provider = excluded.provider, \
             body = excluded.body, window_state = excluded.window_state, \
             submit_by = excluded.submit_by, deadline = excluded.deadline, \
             submit_key = excluded.submit_key, next_check_at = excluded.next_check_at, \
             updated_at = excluded.updated_at",
        )
        .bind(w.tenant.as_str())
        .bind(&w.id)
        .bind(&w.provider)
        .bind(&w.body)
        .bind(&c.window_state)
        .bind(c.submit_by)
        .bind(c.deadline)
        .bind(c.submit_key())
        .bind(c.next_check_at)
        .bind(w.now)
        .execute(&mut *tx)
        .await?;
        fx.write(&mut tx, self.backend).await?;
        tx.commit().await?;
        Ok(if old.is_none() {
            Put::Created
        } else {
            Put::Updated
        })
    }

    /// Stops watching the tenant's order `id`, releasing its CA order `release` if only the
    /// watch held it; false if it was not watched.
    pub async fn delete_watched(
        &self,
        tenant: &TenantId,
        id: &str,
        release: Option<OrderRef<'_>>,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("DELETE FROM watched_orders WHERE tenant = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if let Some(order) = release.filter(|_| n == 1) {
            crate::owners::release_watch(&mut tx, order, tenant).await?;
        }
        tx.commit().await?;
        Ok(n == 1)
    }

    /// The tenant's watched orders, soonest `submit_by` first (those without a window last).
    pub async fn list_watched(
        &self,
        tenant: &TenantId,
        filter: &WatchedFilter<'_>,
    ) -> Result<Vec<WatchedRow>> {
        let (after_key, after_id) = filter.after.unwrap_or((i64::MIN, ""));
        let rows = sqlx::query_as::<_, WatchedRow>(&format!(
            "SELECT {WATCHED_COLUMNS} FROM watched_orders WHERE tenant = $1 \
             AND ($2 = '' OR provider = $2) \
             AND ($3 < 0 OR (deadline >= $3 AND submit_by <= $4)) \
             AND (submit_key > $5 OR (submit_key = $5 AND id > $6)) \
             ORDER BY submit_key, id LIMIT $7"
        ))
        .bind(tenant.as_str())
        .bind(filter.provider.unwrap_or(""))
        .bind(filter.open_at.unwrap_or(-1))
        .bind(filter.submit_by_until.unwrap_or(NO_WINDOW))
        .bind(after_key)
        .bind(after_id)
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// When the next watched order falls due (ms), if any.
    pub async fn next_watch_due(&self) -> Result<Option<i64>> {
        let due: Option<i64> = sqlx::query_scalar("SELECT MIN(next_check_at) FROM watched_orders")
            .fetch_one(&self.pool)
            .await?;
        Ok(due)
    }

    /// Checks up to `limit` watched orders due at `now`, in one transaction: `check` decides
    /// each one's window, next check and effects (events). How many were checked.
    pub async fn watch_batch<F>(&self, now: i64, limit: i64, mut check: F) -> Result<usize>
    where
        F: FnMut(&WatchedRow, &mut Effects) -> WatchedCheck,
    {
        let mut tx = self.pool.begin().await?;
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let rows = sqlx::query_as::<_, WatchedRow>(&format!(
            "SELECT {WATCHED_COLUMNS} FROM watched_orders WHERE next_check_at <= $1 \
             ORDER BY next_check_at LIMIT $2 {lock}"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(0);
        }
        let mut fx = Effects::default();
        let checks: Vec<WatchedCheck> = rows.iter().map(|r| check(r, &mut fx)).collect();
        // One statement for the batch (a round trip, or on SQLite a hop to its thread, per
        // order would dominate). SQLite's planner joins an UPDATE ... FROM a batch the wrong
        // way round (the whole table against the batch), so there each order of the batch is
        // written back as an upsert, which looks it up by its key.
        let update = match self.backend {
            Backend::Postgres => format!(
                "UPDATE watched_orders SET window_state = v.w, submit_by = v.s, deadline = v.d, \
                 submit_key = v.k, next_check_at = v.n FROM (SELECT column1 AS t, column2 AS i, \
                 column3 AS w, column4 AS s, column5 AS d, column6 AS k, column7 AS n \
                 FROM (VALUES {}) AS x) AS v \
                 WHERE watched_orders.tenant = v.t AND watched_orders.id = v.i",
                values(self.backend, rows.len(), &CHECK_COLUMNS)
            ),
            Backend::Sqlite => format!(
                "INSERT INTO watched_orders (tenant, id, window_state, submit_by, deadline, \
                 submit_key, next_check_at, provider, body, created_at, updated_at) \
                 SELECT column1, column2, column3, column4, column5, column6, column7, \
                 column8, column9, column10, column11 FROM (VALUES {}) AS x WHERE true \
                 ON CONFLICT (tenant, id) DO UPDATE SET window_state = excluded.window_state, \
                 submit_by = excluded.submit_by, deadline = excluded.deadline, \
                 submit_key = excluded.submit_key, next_check_at = excluded.next_check_at",
                values(self.backend, rows.len(), &UPSERT_COLUMNS)
            ),
        };
        let mut update = sqlx::query(&update);
        for (r, c) in rows.iter().zip(&checks) {
            update = update
                .bind(r.tenant.as_str())
                .bind(&r.id)
                .bind(&c.window_state)
                .bind(c.submit_by)
                .bind(c.deadline)
                .bind(c.submit_key())
                .bind(c.next_check_at);
            if self.backend == Backend::Sqlite {
                update = update
                    .bind(&r.provider)
                    .bind(&r.body)
                    .bind(r.created_at)
                    .bind(r.updated_at);
            }
        }
        update.execute(&mut *tx).await?;
        fx.write(&mut tx, self.backend).await?;
        tx.commit().await?;
        Ok(rows.len())
    }

    /// Writes many watched orders at once (an import): new ones are added, known ones get
    /// their new facts; each is checked at its `next_check_at`. Their windows come from the
    /// next check.
    pub async fn import_watched(&self, orders: &[WatchedWrite]) -> Result<()> {
        const COLUMNS: [&str; 10] = [
            "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "BIGINT", "BIGINT", "BIGINT", "BIGINT",
            "BIGINT",
        ];
        // Under both databases' limits on bound parameters; an order twice in one statement
        // would be refused, so the last of its lines is written.
        for chunk in orders.chunks(1_000) {
            let mut last = std::collections::HashMap::new();
            for (i, w) in chunk.iter().enumerate() {
                last.insert((&w.tenant, &w.id), i);
            }
            let chunk: Vec<&WatchedWrite> = chunk
                .iter()
                .enumerate()
                .filter(|(i, w)| last[&(&w.tenant, &w.id)] == *i)
                .map(|(_, w)| w)
                .collect();
            let sql = format!(
                "INSERT INTO watched_orders (tenant, id, provider, body, window_state, submit_by, \
                 deadline, submit_key, next_check_at, created_at, updated_at) \
                 SELECT column1, column2, column3, column4, column5, column6, column7, column8, \
                 column9, column10, column10 FROM (VALUES {}) AS x WHERE true \
                 ON CONFLICT (tenant, id) DO UPDATE SET provider = excluded.provider, \
                 body = excluded.body, next_check_at = excluded.next_check_at, \
                 updated_at = excluded.updated_at",
                values(self.backend, chunk.len(), &COLUMNS)
            );
            let mut q = sqlx::query(&sql);
            for w in &chunk {
                q = q
                    .bind(w.tenant.as_str())
                    .bind(&w.id)
                    .bind(&w.provider)
                    .bind(&w.body)
                    .bind(&w.check.window_state)
                    .bind(w.check.submit_by)
                    .bind(w.check.deadline)
                    .bind(w.check.submit_key())
                    .bind(w.check.next_check_at)
                    .bind(w.now);
            }
            q.execute(&self.pool).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_number_and_cast_every_placeholder() {
        use crate::Backend;
        assert_eq!(
            super::values(Backend::Postgres, 2, &["TEXT", "BIGINT"]),
            "(CAST($1 AS TEXT),CAST($2 AS BIGINT)),(CAST($3 AS TEXT),CAST($4 AS BIGINT))"
        );
        assert_eq!(
            super::values(Backend::Sqlite, 1, &["TEXT", "BIGINT"]),
            "(CAST(? AS TEXT),CAST(? AS BIGINT))"
        );
    }
}
