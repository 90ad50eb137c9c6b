//! The support desk's sessions and queue: a session is found by the digest of its cookie (the
//! cookie itself is never stored) and ends at `expires_at` or at logout; the queue pages the
//! tickets of a user's tenants in the database, the soonest due first.

use crate::{Result, Store, TicketRow};
use certgate_core::ticket::TicketStatus;
use certgate_core::TenantId;

/// A desk session as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeskSession {
    pub desk_user: String,
    /// The token every form of the session carries.
    pub csrf: String,
    pub expires_at: i64,
    /// The id of the user's key when the session began.
    pub key_id: String,
}

impl Store {
    /// Starts a session of `user`, whose key has the id `key_id`; expired ones are forgotten
    /// on the way.
    pub async fn start_desk_session(
        &self,
        digest: &str,
        user: &str,
        key_id: &str,
        csrf: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM desk_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO desk_sessions (digest, desk_user, csrf, created_at, expires_at, key_id, last_seen) \
             VALUES ($1, $2, $3, $4, $5, $6, $4)",
        )
        .bind(digest)
        .bind(user)
        .bind(csrf)
        .bind(now)
        .bind(expires_at)
        .bind(key_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session whose cookie has this digest, if it has not ended at `now` nor been idle
    /// since `idle_since`; it counts as seen at `now`.
    pub async fn desk_session(
        &self,
        digest: &str,
        now: i64,
        idle_since: i64,
    ) -> Result<Option<DeskSession>> {
        let row = sqlx::query_as::<_, DeskSession>(
            "UPDATE desk_sessions SET last_seen = $2 \
             WHERE digest = $1 AND expires_at > $2 AND last_seen > $3 \
             RETURNING desk_user, csrf, expires_at, key_id",
        )
        .bind(digest)
        .bind(now)
        .bind(idle_since)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    pub async fn end_desk_session(&self, digest: &str) -> Result<()> {
        sqlx::query("DELETE FROM desk_sessions WHERE digest = $1")
            .bind(digest)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A page of the tickets of `tenants` (in `status`, at `provider`, where given): those
    /// whose request must go soonest first (none last), then the oldest; and how many match.
    pub async fn desk_queue(
        &self,
        tenants: &[TenantId],
        filter: QueueFilter<'_>,
        offset: i64,
        limit: i64,
    ) -> Result<(i64, Vec<TicketRow>)> {
        if tenants.is_empty() {
            return Ok((0, Vec::new()));
        }
        // $1 status, $2 provider, then the tenants.
        let among = (0..tenants.len())
            .map(|i| format!("${}", i + 3))
            .collect::<Vec<_>>()
            .join(", ");
        let matching = format!(
            "FROM tickets WHERE tenant IN ({among}) AND ($1 = '' OR status = $1) \
             AND ($2 = '' OR provider = $2)"
        );
        let status = filter.status.map_or("", TicketStatus::as_str);
        let provider = filter.provider.unwrap_or("");
        let count_sql = format!("SELECT COUNT(*) {matching}");
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql)
            .bind(status)
            .bind(provider);
        for t in tenants {
            count = count.bind(t.as_str());
        }
        let total = count.fetch_one(&self.pool).await?;
        let n = tenants.len() + 3;
        let page_sql = format!(
            "SELECT id, tenant, operation_id, status, body {matching} \
             ORDER BY (CASE WHEN due_at IS NULL THEN 1 ELSE 0 END), due_at, created_at, id \
             LIMIT ${n} OFFSET ${}",
            n + 1
        );
        let mut rows = sqlx::query_as::<_, TicketRow>(&page_sql)
            .bind(status)
            .bind(provider);
        for t in tenants {
            rows = rows.bind(t.as_str());
        }
        let rows = rows.bind(limit).bind(offset).fetch_all(&self.pool).await?;
        Ok((total, rows))
    }
}

/// Which tickets the desk's queue shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueFilter<'a> {
    /// Only tickets in this status (`None`: any).
    pub status: Option<TicketStatus>,
    /// Only tickets at this CA.
    pub provider: Option<&'a str>,
}
