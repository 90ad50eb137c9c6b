//! The tickets table: a tenant's manual tickets, read and listed (they are written with
//! their operation, as its effects).

use crate::{Result, Store, TicketRow};
use certgate_core::ticket::TicketStatus;
use certgate_core::TenantId;

impl Store {
    pub async fn get_ticket(&self, tenant: &TenantId, id: &str) -> Result<Option<TicketRow>> {
        let row = sqlx::query_as::<_, TicketRow>("SELECT id, tenant, operation_id, status, body FROM tickets WHERE tenant = $1 AND id = $2")
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    pub async fn list_tickets(
        &self,
        tenant: &TenantId,
        status: Option<TicketStatus>,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TicketRow>> {
        let rows = sqlx::query_as::<_, TicketRow>(
            "SELECT id, tenant, operation_id, status, body FROM tickets WHERE tenant = $1 \
             AND ($2 = '' OR status = $2) AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4",
        )
        .bind(tenant.as_str())
        .bind(status.map_or("", TicketStatus::as_str))
        .bind(before.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}
