//! The operations table: a new operation under its tenant's idempotency key, reads and
//! lists, the executor's claim and lease, guarded saves with their effects, the counts
//! `/metrics` shows and the repair of operations nothing would run.

use crate::rows::OPERATION_COLUMNS;
use crate::{
    Backend, Claim, Claimed, Counts, Effects, Inserted, NewOperation, OperationFilter,
    OperationRow, Result, SaveOperation, Store, StoreError,
};
use certgate_core::operation::Status;
use certgate_core::ticket::TicketStatus;
use certgate_core::TenantId;
use sqlx::Row;
use std::time::Duration;

/// An operation nothing would run (with `$1` the instant): a status the executor moves on,
/// no schedule, and no live lease.
const STALLED: &str = "status IN ('queued', 'running', 'awaiting_confirmation', 'awaiting_ca') \
     AND next_run_at IS NULL AND (lease_until IS NULL OR lease_until < $1)";

impl Store {
    /// Inserts a new operation unless the tenant already used its idempotency key, in which
    /// case the existing one comes back, or `claim` finds the CA order another tenant's
    /// (nothing is written then). The audit entry is written only for a new one.
    pub async fn insert_operation(
        &self,
        op: &NewOperation<'_>,
        effects: &Effects,
        claim: Option<&Claim<'_>>,
    ) -> Result<Inserted> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO operations (id, tenant, idempotency_key, request_hash, provider, status, \
             created_at, updated_at, version, next_run_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1, $8, $9) \
             ON CONFLICT (tenant, idempotency_key) DO NOTHING",
        )
        .bind(op.id)
        .bind(op.tenant.as_str())
        .bind(op.idempotency_key)
        .bind(op.request_hash)
        .bind(op.provider)
        .bind(op.status.as_str())
        .bind(op.now)
        .bind(op.next_run_at)
        .bind(&op.body)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !inserted {
            let row = sqlx::query_as::<_, OperationRow>(&format!(
                "SELECT {OPERATION_COLUMNS} FROM operations WHERE tenant = $1 AND idempotency_key = $2"
            ))
            .bind(op.tenant.as_str())
            .bind(op.idempotency_key)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Inserted::Existing(row));
        }
        if let Some(claim) = claim {
            if claim.apply(&mut tx).await? == Claimed::Elsewhere {
                tx.rollback().await?;
                return Ok(Inserted::OwnedElsewhere);
            }
        }
        effects.write(&mut tx, self.backend).await?;
        tx.commit().await?;
        Ok(Inserted::New)
    }

    pub async fn get_operation(&self, tenant: &TenantId, id: &str) -> Result<Option<OperationRow>> {
        if let Some(readers) = &self.readers {
            return readers.operation(tenant, id);
        }
        let row = sqlx::query_as::<_, OperationRow>(&format!(
            "SELECT {OPERATION_COLUMNS} FROM operations WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// The tenant's operations, newest first, after the cursor `before` (an operation id).
    pub async fn list_operations(
        &self,
        tenant: &TenantId,
        filter: &OperationFilter<'_>,
    ) -> Result<Vec<OperationRow>> {
        let rows = sqlx::query_as::<_, OperationRow>(&format!(
            "SELECT {OPERATION_COLUMNS} FROM operations WHERE tenant = $1 \
             AND ($2 = '' OR status = $2) AND ($3 = '' OR provider = $3) AND ($4 = '' OR id < $4) \
             ORDER BY id DESC LIMIT $5"
        ))
        .bind(tenant.as_str())
        .bind(filter.status.map_or("", Status::as_str))
        .bind(filter.provider.unwrap_or(""))
        .bind(filter.before.unwrap_or(""))
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Leases the next operation that is due, to `owner` until `now + lease`. On Postgres,
    /// `FOR UPDATE SKIP LOCKED` keeps two gateways from claiming the same one; SQLite has a
    /// single writer.
    pub async fn claim_operation(
        &self,
        owner: &str,
        now: i64,
        lease: Duration,
    ) -> Result<Option<OperationRow>> {
        let lock = match self.backend {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let until = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let row = sqlx::query_as::<_, OperationRow>(&format!(
            "UPDATE operations SET lease_owner = $1, lease_until = $2, version = version + 1 \
             WHERE id = (SELECT id FROM operations WHERE next_run_at <= $3 \
                         AND (lease_until IS NULL OR lease_until < $3) \
                         ORDER BY next_run_at LIMIT 1 {lock}) \
             AND next_run_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
             RETURNING {OPERATION_COLUMNS}"
        ))
        .bind(owner)
        .bind(until)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// When the next operation falls due (milliseconds), if any is waiting.
    pub async fn next_due(&self, now: i64) -> Result<Option<i64>> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(next_run_at) FROM operations WHERE next_run_at IS NOT NULL \
             AND (lease_until IS NULL OR lease_until < $1)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(due)
    }

    /// Takes an operation out of the executor's hands (its body cannot be read): marked
    /// `failed`, never claimed again, its body kept for an operator.
    pub async fn park_operation(&self, id: &str, owner: &str) -> Result<()> {
        sqlx::query(
            "UPDATE operations SET status = $1, next_run_at = NULL, lease_owner = NULL, \
             lease_until = NULL, version = version + 1 WHERE id = $2 AND lease_owner = $3",
        )
        .bind(Status::Failed.as_str())
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Extends `owner`'s lease; false if the lease was lost.
    pub async fn renew_lease(&self, id: &str, owner: &str, until: i64) -> Result<bool> {
        let n = sqlx::query(
            "UPDATE operations SET lease_until = $1 WHERE id = $2 AND lease_owner = $3",
        )
        .bind(until)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    /// Writes an operation if nobody changed it since `expected_version` (and, with an
    /// `owner`, only while that owner holds the lease), with its effects, atomically. False if
    /// the guard failed and nothing was written.
    pub async fn save_operation(
        &self,
        save: &SaveOperation<'_>,
        effects: &Effects,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let lease_owner: Option<&str> = if save.keep_lease { save.owner } else { None };
        // The executor keeps or gives back its own lease; a change through the API or the
        // desk leaves the lease (of a worker that may be mid-call) as it is.
        let n = sqlx::query(
            "UPDATE operations SET status = $1, updated_at = $2, \
             next_run_at = CASE WHEN $9 = 1 THEN next_run_at ELSE $3 END, body = $4, \
             version = version + 1, \
             lease_owner = CASE WHEN $8 = '' THEN lease_owner ELSE $5 END, \
             lease_until = CASE WHEN $8 = '' THEN lease_until WHEN $5 IS NULL THEN NULL ELSE lease_until END \
             WHERE id = $6 AND version = $7 AND ($8 = '' OR lease_owner = $8)",
        )
        .bind(save.status.as_str())
        .bind(save.now)
        .bind(save.next_run_at)
        .bind(&save.body)
        .bind(lease_owner)
        .bind(save.id)
        .bind(save.expected_version)
        .bind(save.owner.unwrap_or(""))
        .bind(i64::from(save.keep_schedule))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if !effects.write(&mut tx, self.backend).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// How many operations of each status, the open tickets, and the stalled operations at
    /// `now` (ms).
    pub async fn counts(&self, now: i64) -> Result<Counts> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM operations GROUP BY status")
            .fetch_all(&self.pool)
            .await?;
        let operations = rows
            .iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                let status = Status::try_from(status)
                    .map_err(|e| StoreError::Corrupt(format!("operation status: {e}")))?;
                Ok((status, r.try_get::<i64, _>("n")?))
            })
            .collect::<Result<Vec<_>>>()?;
        let open_tickets: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM tickets WHERE status = $1")
                .bind(TicketStatus::Open.as_str())
                .fetch_one(&self.pool)
                .await?;
        let stalled: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM operations WHERE {STALLED}"))
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
        Ok(Counts {
            operations,
            open_tickets,
            stalled,
        })
    }

    /// Schedules at `now` every operation nothing would run: not finished, not waiting for a
    /// person, nothing scheduled, no live lease (a bug's mark; each one is logged). Their ids.
    pub async fn repair_stalled(&self, now: i64) -> Result<Vec<String>> {
        let ids: Vec<String> = sqlx::query_scalar(&format!(
            "UPDATE operations SET next_run_at = $1 WHERE {STALLED} RETURNING id"
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }
}
