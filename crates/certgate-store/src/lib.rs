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

mod audit;
mod desk;
mod events;
mod ledger;
mod lock;
mod operations;
mod owners;
mod pace;
mod readers;
mod rows;
mod tickets;
mod watch;

pub use desk::*;
pub use events::PRUNE_BATCH;
pub use ledger::*;
pub use lock::StoreLock;
pub use owners::*;
pub use rows::*;
pub use watch::*;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection};
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
}

/// Milliseconds since the epoch, as the store keeps instants.
pub fn ms(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_millis()
}

/// Milliseconds since the epoch by this process's clock (SQLite has one gateway).
fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
