//! The events table and its webhook deliveries: a tenant's feed, the lanes due, the claim
//! and outcome of an attempt, redelivery, the backlog, and pruning past retention.

use crate::rows::{DELIVERY_COLUMNS, EVENT_COLUMNS};
use crate::{Attempt, Backend, Backlog, DeliveryRow, EventRow, Result, Store, StoreError};
use certgate_core::event::{DeliveryStatus, DeliveryTarget, EventType};
use certgate_core::TenantId;
use sqlx::Row;
use std::time::Duration;

/// Rows one pruning statement deletes at most.
pub const PRUNE_BATCH: i64 = 500;

impl Store {
    /// The tenant's events after `after` (a `seq`; 0 for the first), oldest first.
    pub async fn list_events(
        &self,
        tenant: &TenantId,
        after: i64,
        kind: Option<EventType>,
        limit: i64,
    ) -> Result<Vec<EventRow>> {
        let rows = sqlx::query_as::<_, EventRow>(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE tenant = $1 AND seq > $2 \
             AND ($3 = '' OR type = $3) ORDER BY seq LIMIT $4"
        ))
        .bind(tenant.as_str())
        .bind(after)
        .bind(kind.map_or("", EventType::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub async fn get_event(&self, tenant: &TenantId, id: &str) -> Result<Option<EventRow>> {
        let row = sqlx::query_as::<_, EventRow>(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// The (tenant, target) lanes with a delivery due at `now` and not in flight.
    pub async fn due_lanes(&self, now: i64) -> Result<Vec<(TenantId, DeliveryTarget)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT tenant, target FROM deliveries WHERE status = $1 \
             AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2)",
        )
        .bind(DeliveryStatus::Pending.as_str())
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let target: String = r.try_get("target")?;
                let target = target
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("delivery target `{target}`: {e}")))?;
                Ok((r.try_get::<String, _>("tenant")?.into(), target))
            })
            .collect()
    }

    /// When the next pending delivery not in flight falls due (ms), if any.
    pub async fn next_delivery_due(&self, now: i64) -> Result<Option<i64>> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE status = $1 \
             AND (lease_until IS NULL OR lease_until < $2)",
        )
        .bind(DeliveryStatus::Pending.as_str())
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(due)
    }

    /// Leases, until `now + lease`, the oldest due delivery of a lane whose stream has
    /// nothing older pending (each operation's events go out in order), counting the attempt.
    pub async fn claim_delivery(
        &self,
        tenant: &TenantId,
        target: DeliveryTarget,
        now: i64,
        lease: Duration,
    ) -> Result<Option<DeliveryRow>> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let until = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let row = sqlx::query_as::<_, DeliveryRow>(&format!(
            "UPDATE deliveries SET lease_until = $1, attempts = attempts + 1 WHERE id = ( \
               SELECT d.id FROM deliveries d WHERE d.tenant = $3 AND d.target = $4 \
               AND d.status = $5 AND d.next_attempt_at <= $2 \
               AND (d.lease_until IS NULL OR d.lease_until < $2) \
               AND NOT EXISTS (SELECT 1 FROM deliveries p WHERE p.tenant = d.tenant \
                               AND p.target = d.target \
                               AND p.stream = d.stream AND p.id < d.id AND p.status = $5) \
               ORDER BY d.id LIMIT 1 {lock}) \
             AND status = $5 AND (lease_until IS NULL OR lease_until < $2) \
             RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(until)
        .bind(now)
        .bind(tenant.as_str())
        .bind(target.as_str())
        .bind(DeliveryStatus::Pending.as_str())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// Records how an attempt of delivery `id` ended: delivered, due again, or dead.
    pub async fn record_attempt(&self, id: i64, attempt: &Attempt) -> Result<()> {
        let (status, delivered_at) = match (&attempt.error, attempt.next_attempt_at) {
            (None, _) => (DeliveryStatus::Delivered, Some(attempt.now)),
            (Some(_), Some(_)) => (DeliveryStatus::Pending, None),
            (Some(_), None) => (DeliveryStatus::Dead, None),
        };
        sqlx::query(
            "UPDATE deliveries SET status = $1, delivered_at = $2, last_status_code = $3, \
             last_error = $4, next_attempt_at = COALESCE($5, next_attempt_at), lease_until = NULL \
             WHERE id = $6",
        )
        .bind(status.as_str())
        .bind(delivered_at)
        .bind(attempt.status_code.map(i64::from))
        .bind(attempt.error.as_deref())
        .bind(attempt.next_attempt_at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The tenant's deliveries after the id `after`, oldest first.
    pub async fn list_deliveries(
        &self,
        tenant: &TenantId,
        status: Option<DeliveryStatus>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>> {
        let rows = sqlx::query_as::<_, DeliveryRow>(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE tenant = $1 \
             AND ($2 = '' OR status = $2) AND id > $3 ORDER BY id LIMIT $4"
        ))
        .bind(tenant.as_str())
        .bind(status.map_or("", DeliveryStatus::as_str))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub async fn get_delivery(&self, tenant: &TenantId, id: i64) -> Result<Option<DeliveryRow>> {
        let row = sqlx::query_as::<_, DeliveryRow>(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// Queues the tenant's delivery `id` again, due at `now`, tried until `expires_at` with
    /// its attempts counted afresh (one in flight finishes its attempt first). `None` if the tenant has no such delivery.
    pub async fn redeliver(
        &self,
        tenant: &TenantId,
        id: i64,
        now: i64,
        expires_at: i64,
    ) -> Result<Option<DeliveryRow>> {
        let row = sqlx::query_as::<_, DeliveryRow>(&format!(
            "UPDATE deliveries SET status = $1, next_attempt_at = $2, expires_at = $3, \
             attempts = 0, delivered_at = NULL WHERE tenant = $4 AND id = $5 RETURNING {DELIVERY_COLUMNS}"
        ))
        .bind(DeliveryStatus::Pending.as_str())
        .bind(now)
        .bind(expires_at)
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// Queues every delivery of the tenant in `status` again, attempts counted afresh (they
    /// go out in their original order); how many.
    pub async fn redeliver_all(
        &self,
        tenant: &TenantId,
        status: DeliveryStatus,
        now: i64,
        expires_at: i64,
    ) -> Result<u64> {
        let n = sqlx::query(
            "UPDATE deliveries SET status = $1, next_attempt_at = $2, expires_at = $3, \
             attempts = 0, delivered_at = NULL WHERE tenant = $4 AND status = $5",
        )
        .bind(DeliveryStatus::Pending.as_str())
        .bind(now)
        .bind(expires_at)
        .bind(tenant.as_str())
        .bind(status.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
    }

    /// Each tenant's pending and dead deliveries.
    pub async fn delivery_backlog(&self) -> Result<Vec<Backlog>> {
        let rows = sqlx::query_as::<_, Backlog>(
            "SELECT tenant, \
             SUM(CASE WHEN status = $1 THEN 1 ELSE 0 END) AS pending, \
             SUM(CASE WHEN status = $2 THEN 1 ELSE 0 END) AS dead, \
             MIN(CASE WHEN status = $1 THEN created_at END) AS oldest_pending \
             FROM deliveries WHERE status IN ($1, $2) GROUP BY tenant ORDER BY tenant",
        )
        .bind(DeliveryStatus::Pending.as_str())
        .bind(DeliveryStatus::Dead.as_str())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Forgets what is past its retention: delivered deliveries created before `before`, and
    /// events created before it that no pending or dead delivery still carries (a dead
    /// delivery and its event stay until redelivered or pruned by
    /// [`Store::prune_dead_deliveries`]). Deletes [`PRUNE_BATCH`] rows per statement, each
    /// its own short transaction, so SQLite's one writer is never held for long; how many
    /// events and deliveries went.
    pub async fn prune_events(&self, before: i64) -> Result<(u64, u64)> {
        let deliveries = self
            .delete_in_batches(
                "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries \
                 WHERE status = $1 AND created_at < $2 ORDER BY id LIMIT $3)",
                &[DeliveryStatus::Delivered.as_str()],
                before,
            )
            .await?;
        let events = self
            .delete_in_batches(
                "DELETE FROM events WHERE seq IN (SELECT seq FROM events e \
                 WHERE e.created_at < $3 AND NOT EXISTS (SELECT 1 FROM deliveries d \
                 WHERE d.event_id = e.id AND d.status IN ($1, $2)) ORDER BY seq LIMIT $4)",
                &[
                    DeliveryStatus::Pending.as_str(),
                    DeliveryStatus::Dead.as_str(),
                ],
                before,
            )
            .await?;
        Ok((events, deliveries))
    }

    /// Deletes the dead deliveries created before `before` (of `tenant`, or of every tenant),
    /// in batches; how many. Their events go with the next prune once past their retention.
    pub async fn prune_dead_deliveries(
        &self,
        tenant: Option<&TenantId>,
        before: i64,
    ) -> Result<u64> {
        match tenant {
            Some(tenant) => {
                self.delete_in_batches(
                    "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries \
                     WHERE status = $1 AND tenant = $2 AND created_at < $3 ORDER BY id LIMIT $4)",
                    &[DeliveryStatus::Dead.as_str(), tenant.as_str()],
                    before,
                )
                .await
            }
            None => {
                self.delete_in_batches(
                    "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries \
                     WHERE status = $1 AND created_at < $2 ORDER BY id LIMIT $3)",
                    &[DeliveryStatus::Dead.as_str()],
                    before,
                )
                .await
            }
        }
    }

    /// Runs `sql` (bound to `texts`, then `before`, then the batch size) until it deletes
    /// fewer than a batch, yielding between batches; how many rows went.
    async fn delete_in_batches(&self, sql: &str, texts: &[&str], before: i64) -> Result<u64> {
        let mut total = 0;
        loop {
            let mut query = sqlx::query(sql);
            for text in texts {
                query = query.bind(*text);
            }
            let n = query
                .bind(before)
                .bind(PRUNE_BATCH)
                .execute(&self.pool)
                .await?
                .rows_affected();
            total += n;
            if n < PRUNE_BATCH as u64 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }
}
