//! The shared pace of CA accounts (`pace_accounts`, `pace_sends`): the calls every gateway
//! recorded, and whether more may go now.

use crate::{epoch_ms, Backend, Result, Store};
use certgate_core::pace::{Admit, Window};

impl Store {
    /// The shared pace of a CA account (Postgres): in one short transaction that holds the
    /// account's row, may `n` calls go now by the database's clock, given the calls every
    /// gateway recorded and `ahead` calls waiting before them? If so they are recorded
    /// (`replacing`: the instant of an earlier admission of them, given back first).
    /// Returns the database's now and the decision.
    pub async fn pace_admit(
        &self,
        account: &str,
        windows: &[Window],
        n: u32,
        ahead: u32,
        replacing: Option<i64>,
    ) -> Result<(i64, Admit)> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO pace_accounts (account) VALUES ($1) ON CONFLICT (account) DO NOTHING",
        )
        .bind(account)
        .execute(&mut *tx)
        .await?;
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        sqlx::query(&format!(
            "SELECT account FROM pace_accounts WHERE account = $1{lock}"
        ))
        .bind(account)
        .execute(&mut *tx)
        .await?;
        let now: i64 = match self.backend {
            Backend::Postgres => {
                sqlx::query_scalar("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT")
                    .fetch_one(&mut *tx)
                    .await?
            }
            Backend::Sqlite => epoch_ms(),
        };
        if let Some(earlier) = replacing {
            let one = match self.backend {
                Backend::Postgres => "ctid IN (SELECT ctid FROM pace_sends WHERE account = $1 AND at = $2 LIMIT $3)",
                Backend::Sqlite => "rowid IN (SELECT rowid FROM pace_sends WHERE account = $1 AND at = $2 LIMIT $3)",
            };
            sqlx::query(&format!("DELETE FROM pace_sends WHERE {one}"))
                .bind(account)
                .bind(earlier)
                .bind(i64::from(n))
                .execute(&mut *tx)
                .await?;
        }
        let longest = windows.iter().map(|w| w.span_ms).max().unwrap_or(0);
        sqlx::query("DELETE FROM pace_sends WHERE account = $1 AND at <= $2")
            .bind(account)
            .bind(now - longest)
            .execute(&mut *tx)
            .await?;
        let sends: Vec<i64> =
            sqlx::query_scalar("SELECT at FROM pace_sends WHERE account = $1 ORDER BY at")
                .bind(account)
                .fetch_all(&mut *tx)
                .await?;
        let decision = certgate_core::pace::admit(&sends, windows, n, ahead, now);
        if decision == Admit::Now {
            for _ in 0..n {
                sqlx::query("INSERT INTO pace_sends (account, at) VALUES ($1, $2)")
                    .bind(account)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok((now, decision))
    }
}
