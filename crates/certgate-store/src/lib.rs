//! certgate's durable store: operations (with their idempotency keys and work leases), manual
//! tickets, events with their webhook deliveries, the audit log, the shared pace, the refund
//! ledger, the watched orders, the owners of CA orders in shared accounts and the support desk's
//! sessions. SQLite is the embedded default (a file in WAL
//! mode, or `sqlite::memory:`); a `postgres://` URL selects Postgres. One schema, migrated at
//! start; queries are checked at run time, so no build step needs a database.
//!
//! Rows carry their domain object as JSON (`body`) beside the columns queries filter on; the
//! store knows nothing of the domain. Every write of an operation is guarded by its `version`
//! (and, for the executor, its lease), and its side effects (tickets, events and deliveries, audit entries)
//! commit in the same transaction.

mod desk;
mod ledger;
mod lock;
mod owners;
mod readers;
mod rows;
mod watch;

pub use desk::*;
pub use ledger::*;
pub use lock::StoreLock;
pub use owners::*;
pub use rows::*;
pub use watch::*;

use certgate_core::event::{DeliveryStatus, DeliveryTarget, EventType};
use certgate_core::operation::Status;
use certgate_core::pace::{Admit, Window};
use certgate_core::ticket::TicketStatus;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection, Row};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Reader(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data unreadable: {0}")]
    Corrupt(String),
    #[error(
        "unsupported database URL `{0}`: use sqlite::memory:, sqlite://FILE or postgres://..."
    )]
    UnsupportedUrl(String),
    #[error("the database cannot be reached: {0}")]
    Unreachable(String),
    #[error("{path} is in use by another certgate serve ({holder}): one gateway per SQLite file; stop it first, or share a Postgres database to run several")]
    Locked { path: String, holder: String },
    #[error("cannot lock {path}: {cause}")]
    Lock { path: String, cause: String },
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// An operation nothing would run (with `$1` the instant): a status the executor moves on,
/// no schedule, and no live lease.
const STALLED: &str = "status IN ('queued', 'running', 'awaiting_confirmation', 'awaiting_ca') \
     AND next_run_at IS NULL AND (lease_until IS NULL OR lease_until < $1)";

/// Whether a connection may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    ReadWrite,
    ReadOnly,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The store. Cheap to clone (a pool handle).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// A SQLite file's point reads in the caller's thread ([`readers`]); none on Postgres or
    /// in memory.
    readers: Option<std::sync::Arc<readers::Readers>>,
    backend: Backend,
    /// A SQLite file's path and identity when opened, to notice it deleted or replaced.
    file: Option<(std::path::PathBuf, FileId)>,
}

/// Which file a path names (device and inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId(u64, u64);

impl FileId {
    #[cfg(unix)]
    fn of(path: &std::path::Path) -> Option<FileId> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path)
            .ok()
            .map(|m| FileId(m.dev(), m.ino()))
    }

    #[cfg(not(unix))]
    fn of(path: &std::path::Path) -> Option<FileId> {
        std::fs::metadata(path).ok().map(|_| FileId(0, 0))
    }
}

/// Rows one pruning statement deletes at most.
pub const PRUNE_BATCH: i64 = 500;

/// SQLite's page cache, in KiB.
const SQLITE_CACHE_KIB: u32 = 128 * 1024;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects and migrates. `url`: `sqlite::memory:`, `sqlite://FILE` (created if missing)
    /// or `postgres://...`. No lease is touched: a running gateway's stay its own (only
    /// [`Store::release_stale_leases`], with the file's lock held, releases them).
    pub async fn connect(url: &str) -> Result<Store> {
        Store::connect_within(url, Duration::from_secs(10)).await
    }

    /// [`Store::connect`], giving up after `limit` with the cause (connection refused, no
    /// answer, authentication failed...) if the database cannot be reached.
    pub async fn connect_within(url: &str, limit: Duration) -> Result<Store> {
        Store::open(url, limit, Access::ReadWrite).await
    }

    /// A store that only reads (a report beside a running gateway): a SQLite file opened
    /// read-only, a Postgres session in read-only transactions; nothing is migrated.
    pub async fn connect_read_only(url: &str, limit: Duration) -> Result<Store> {
        Store::open(url, limit, Access::ReadOnly).await
    }

    async fn open(url: &str, limit: Duration, access: Access) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let read_only = access == Access::ReadOnly;
        let (backend, url, max) =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                (Backend::Postgres, url.to_owned(), 10)
            } else if url == "sqlite::memory:" {
                // One connection: every connection to :memory: would be its own database.
                (Backend::Sqlite, url.to_owned(), 1)
            } else if let Some(path) = url.strip_prefix("sqlite://") {
                // One writer at a time is what SQLite allows; a single connection also avoids
                // lock-upgrade failures between concurrent transactions.
                let sep = if path.contains('?') { '&' } else { '?' };
                let url = match (path.contains("mode="), read_only) {
                    (true, _) => url.to_owned(),
                    (false, true) => format!("{url}{sep}mode=ro"),
                    (false, false) => format!("{url}{sep}mode=rwc"),
                };
                (Backend::Sqlite, url, 1)
            } else {
                return Err(StoreError::UnsupportedUrl(url.to_owned()));
            };
        // One connection first, for its own error: a pool that cannot connect only says that
        // it timed out.
        match tokio::time::timeout(limit, sqlx::AnyConnection::connect(&url)).await {
            Err(_) => {
                return Err(StoreError::Unreachable(format!(
                    "no answer within {} s",
                    limit.as_secs_f64()
                )))
            }
            Ok(Err(e)) => return Err(StoreError::Unreachable(e.to_string())),
            Ok(Ok(conn)) => conn.close().await?,
        }
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Postgres && read_only {
                        sqlx::query("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
                            .execute(&mut *conn)
                            .await?;
                    }
                    if backend == Backend::Sqlite {
                        if !read_only {
                            sqlx::query("PRAGMA journal_mode = WAL")
                                .execute(&mut *conn)
                                .await?;
                        }
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *conn)
                            .await?;
                        // Every commit reaches the disk before it returns: the save of an
                        // attempt, which exactly-once rests on, survives a power loss.
                        sqlx::query("PRAGMA synchronous = FULL")
                            .execute(&mut *conn)
                            .await?;
                        // The one connection's page cache (SQLite's default is 8 MB): enough
                        // for the indexes a pass over a million watched orders walks at random.
                        sqlx::query(&format!("PRAGMA cache_size = -{SQLITE_CACHE_KIB}"))
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        match backend {
            _ if read_only => {}
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
        }
        // The writer has made the file and its WAL by now.
        let path = url
            .strip_prefix("sqlite://")
            .map(|file| std::path::PathBuf::from(file.split('?').next().unwrap_or(file)));
        let readers = match &path {
            Some(path) => Some(std::sync::Arc::new(readers::Readers::open(path.clone())?)),
            None => None,
        };
        let file = path.and_then(|path| FileId::of(&path).map(|id| (path, id)));
        Ok(Store {
            pool,
            readers,
            backend,
            file,
        })
    }

    /// Releases the work leases a SQLite file holds: with its lock held, they can only be a
    /// previous gateway's, which died mid-call, so its operations resume at once instead of
    /// waiting for the leases to expire. (On Postgres other gateways may hold them: they
    /// expire.)
    pub async fn release_stale_leases(&self, _held: &StoreLock) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        for table in ["operations", "deliveries"] {
            let owner = if table == "operations" {
                ", lease_owner = NULL"
            } else {
                ""
            };
            sqlx::query(&format!(
                "UPDATE {table} SET lease_until = NULL{owner} WHERE lease_until IS NOT NULL"
            ))
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Closes every connection (a SQLite file is free for another gateway afterwards).
    pub async fn close(&self) {
        if let Some(readers) = &self.readers {
            readers.close();
        }
        self.pool.close().await;
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A write, committed: does the database take writes (not full, not read-only), and is a
    /// SQLite file still the one opened (not deleted or replaced under the gateway)?
    pub async fn probe_write(&self, now: i64) -> Result<()> {
        if let Some((path, opened)) = &self.file {
            if FileId::of(path).as_ref() != Some(opened) {
                return Err(StoreError::Corrupt(format!(
                    "{} is no longer the file this gateway opened (deleted or replaced): its writes are lost on restart; restart it",
                    path.display()
                )));
            }
        }
        sqlx::query(
            "INSERT INTO health_probe (id, at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A cheap query: is the database there?
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

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
        .bind(op.tenant)
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
            .bind(op.tenant)
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

    pub async fn get_operation(&self, tenant: &str, id: &str) -> Result<Option<OperationRow>> {
        if let Some(readers) = &self.readers {
            return readers.operation(tenant, id);
        }
        let row = sqlx::query_as::<_, OperationRow>(&format!(
            "SELECT {OPERATION_COLUMNS} FROM operations WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// The tenant's operations, newest first, after the cursor `before` (an operation id).
    pub async fn list_operations(
        &self,
        tenant: &str,
        filter: &OperationFilter<'_>,
    ) -> Result<Vec<OperationRow>> {
        let rows = sqlx::query_as::<_, OperationRow>(&format!(
            "SELECT {OPERATION_COLUMNS} FROM operations WHERE tenant = $1 \
             AND ($2 = '' OR status = $2) AND ($3 = '' OR provider = $3) AND ($4 = '' OR id < $4) \
             ORDER BY id DESC LIMIT $5"
        ))
        .bind(tenant)
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

    pub async fn get_ticket(&self, tenant: &str, id: &str) -> Result<Option<TicketRow>> {
        let row = sqlx::query_as::<_, TicketRow>("SELECT id, tenant, operation_id, status, body FROM tickets WHERE tenant = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    pub async fn list_tickets(
        &self,
        tenant: &str,
        status: Option<TicketStatus>,
        before: Option<&str>,
        limit: i64,
    ) -> Result<Vec<TicketRow>> {
        let rows = sqlx::query_as::<_, TicketRow>(
            "SELECT id, tenant, operation_id, status, body FROM tickets WHERE tenant = $1 \
             AND ($2 = '' OR status = $2) AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4",
        )
        .bind(tenant)
        .bind(status.map_or("", TicketStatus::as_str))
        .bind(before.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// The tenant's events after `after` (a `seq`; 0 for the first), oldest first.
    pub async fn list_events(
        &self,
        tenant: &str,
        after: i64,
        kind: Option<EventType>,
        limit: i64,
    ) -> Result<Vec<EventRow>> {
        let rows = sqlx::query_as::<_, EventRow>(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE tenant = $1 AND seq > $2 \
             AND ($3 = '' OR type = $3) ORDER BY seq LIMIT $4"
        ))
        .bind(tenant)
        .bind(after)
        .bind(kind.map_or("", EventType::as_str))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub async fn get_event(&self, tenant: &str, id: &str) -> Result<Option<EventRow>> {
        let row = sqlx::query_as::<_, EventRow>(&format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// The (tenant, target) lanes with a delivery due at `now` and not in flight.
    pub async fn due_lanes(&self, now: i64) -> Result<Vec<(String, DeliveryTarget)>> {
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
                Ok((r.try_get("tenant")?, target))
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
        tenant: &str,
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
        .bind(tenant)
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
        tenant: &str,
        status: Option<DeliveryStatus>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRow>> {
        let rows = sqlx::query_as::<_, DeliveryRow>(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE tenant = $1 \
             AND ($2 = '' OR status = $2) AND id > $3 ORDER BY id LIMIT $4"
        ))
        .bind(tenant)
        .bind(status.map_or("", DeliveryStatus::as_str))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    pub async fn get_delivery(&self, tenant: &str, id: i64) -> Result<Option<DeliveryRow>> {
        let row = sqlx::query_as::<_, DeliveryRow>(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE tenant = $1 AND id = $2"
        ))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// Queues the tenant's delivery `id` again, due at `now`, tried until `expires_at` with
    /// its attempts counted afresh (one in flight finishes its attempt first). `None` if the tenant has no such delivery.
    pub async fn redeliver(
        &self,
        tenant: &str,
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
        .bind(tenant)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row)
    }

    /// Queues every delivery of the tenant in `status` again, attempts counted afresh (they
    /// go out in their original order); how many.
    pub async fn redeliver_all(
        &self,
        tenant: &str,
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
        .bind(tenant)
        .bind(status.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n)
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
                let status = status
                    .parse::<Status>()
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
    pub async fn prune_dead_deliveries(&self, tenant: Option<&str>, before: i64) -> Result<u64> {
        match tenant {
            Some(tenant) => {
                self.delete_in_batches(
                    "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries \
                     WHERE status = $1 AND tenant = $2 AND created_at < $3 ORDER BY id LIMIT $4)",
                    &[DeliveryStatus::Dead.as_str(), tenant],
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

    pub async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        entry.write(&mut tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The tenant's audit log, newest first, before the entry id `before`.
    pub async fn list_audit(
        &self,
        tenant: &str,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query_as::<_, AuditRow>(
            "SELECT id, at, actor, action, target, outcome, detail FROM audit WHERE tenant = $1 \
             AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(tenant)
        .bind(before.unwrap_or(0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}

/// Milliseconds since the epoch by this process's clock (SQLite has one gateway).
/// Milliseconds since the epoch, as the store keeps instants.
pub fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
