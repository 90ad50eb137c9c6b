//! The support desk's sessions: a session is found by the digest of its cookie (the cookie
//! itself is never stored) and ends at `expires_at` or at logout.

use crate::{Result, Store};

/// A desk session as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeskSession {
    pub desk_user: String,
    /// The token every form of the session carries.
    pub csrf: String,
    pub expires_at: i64,
}

impl Store {
    /// Starts a session; expired ones are forgotten on the way.
    pub async fn start_desk_session(
        &self,
        digest: &str,
        user: &str,
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
            "INSERT INTO desk_sessions (digest, desk_user, csrf, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(digest)
        .bind(user)
        .bind(csrf)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session whose cookie has this digest, if it has not ended at `now`.
    pub async fn desk_session(&self, digest: &str, now: i64) -> Result<Option<DeskSession>> {
        let row = sqlx::query_as::<_, DeskSession>(
            "SELECT desk_user, csrf, expires_at FROM desk_sessions \
             WHERE digest = $1 AND expires_at > $2",
        )
        .bind(digest)
        .bind(now)
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
}
