//! The audit log: appending an entry, and a tenant's entries newest first (entries that
//! come with an operation's change are written among its effects).

use crate::{AuditEntry, AuditRow, Result, Store};
use certgate_core::TenantId;

impl Store {
    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        entry.write(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's audit log, newest first, before the entry id `before`.
    pub async fn list_audit(
        &self,
        tenant: &TenantId,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query_as::<_, AuditRow>(
            "SELECT id, at, actor, action, target, outcome, detail FROM audit WHERE tenant = $1 \
             AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant.as_str())
        .bind(before.unwrap_or(0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}
