//! The refund ledger's table: a copy of each operation's refund record, written with the
//! operation, read by the ledger's lists and sums and by the overdue check.

use crate::{Result, Store, StoreError};
use certgate_core::ledger::RefundStatus;
use certgate_core::TenantId;
use sqlx::{Any, Row, Transaction};

/// An operation's refund record, written with the operation.
#[derive(Debug, Clone)]
pub struct RefundWrite {
    pub operation_id: String,
    pub tenant: TenantId,
    pub provider: String,
    pub order_id: String,
    pub currency: String,
    pub status: RefundStatus,
    pub due_by: Option<i64>,
    pub overdue: bool,
    pub mismatch: bool,
    /// The record as JSON.
    pub body: String,
}

impl RefundWrite {
    pub(crate) async fn write(
        &self,
        tx: &mut Transaction<'_, Any>,
    ) -> std::result::Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO refunds (operation_id, tenant, provider, order_id, currency, status, \
             due_by, overdue, mismatch, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (operation_id) DO UPDATE SET currency = excluded.currency, \
             status = excluded.status, due_by = excluded.due_by, overdue = excluded.overdue, \
             mismatch = excluded.mismatch, body = excluded.body",
        )
        .bind(&self.operation_id)
        .bind(self.tenant.as_str())
        .bind(&self.provider)
        .bind(&self.order_id)
        .bind(&self.currency)
        .bind(self.status.as_str())
        .bind(self.due_by)
        .bind(i64::from(self.overdue))
        .bind(i64::from(self.mismatch))
        .bind(&self.body)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

/// A refund record as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RefundRow {
    pub operation_id: String,
    pub provider: String,
    pub order_id: String,
    pub currency: String,
    /// The record as JSON.
    pub body: String,
}

const REFUND_COLUMNS: &str = "operation_id, provider, order_id, currency, body";

/// Which refunds a list shows.
#[derive(Debug, Default)]
pub struct RefundFilter<'a> {
    pub status: Option<RefundStatus>,
    pub provider: Option<&'a str>,
    pub overdue: Option<bool>,
    pub mismatch: Option<bool>,
    /// Cursor: only records of operations with a smaller id.
    pub before: Option<&'a str>,
    pub limit: i64,
}

fn flag(f: Option<bool>) -> i64 {
    f.map_or(-1, i64::from)
}

impl Store {
    /// The tenant's refund records, newest operation first.
    pub async fn list_refunds(
        &self,
        tenant: &TenantId,
        filter: &RefundFilter<'_>,
    ) -> Result<Vec<RefundRow>> {
        let rows = sqlx::query_as::<_, RefundRow>(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE tenant = $1 \
             AND ($2 = '' OR status = $2) AND ($3 = '' OR provider = $3) \
             AND ($4 < 0 OR overdue = $4) AND ($5 < 0 OR mismatch = $5) \
             AND ($6 = '' OR operation_id < $6) ORDER BY operation_id DESC LIMIT $7"
        ))
        .bind(tenant.as_str())
        .bind(filter.status.map_or("", RefundStatus::as_str))
        .bind(filter.provider.unwrap_or(""))
        .bind(flag(filter.overdue))
        .bind(flag(filter.mismatch))
        .bind(filter.before.unwrap_or(""))
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Every refund record of the tenant, a page at a time (by operation id, after `after`),
    /// for the ledger's sums.
    pub async fn refunds_after(
        &self,
        tenant: &TenantId,
        after: &str,
        limit: i64,
    ) -> Result<Vec<RefundRow>> {
        let rows = sqlx::query_as::<_, RefundRow>(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE tenant = $1 AND operation_id > $2 \
             ORDER BY operation_id LIMIT $3"
        ))
        .bind(tenant.as_str())
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Refunds past their `due_by` at `now`, not flagged overdue yet and neither credited nor
    /// denied: (tenant, operation id), at most `limit`.
    pub async fn late_refunds(&self, now: i64, limit: i64) -> Result<Vec<(TenantId, String)>> {
        let rows = sqlx::query(
            "SELECT tenant, operation_id FROM refunds WHERE overdue = 0 AND due_by <= $1 \
             AND status IN ($2, $3, $4) ORDER BY due_by LIMIT $5",
        )
        .bind(now)
        .bind(RefundStatus::Pending.as_str())
        .bind(RefundStatus::Requested.as_str())
        .bind(RefundStatus::Approved.as_str())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("tenant")?.into(),
                    r.try_get("operation_id")?,
                ))
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }
}
