//! Point reads of a SQLite file in the caller's own thread, on a few rusqlite connections kept
//! read-only (`query_only`) beside sqlx's one writer. WAL lets them read while it writes, and
//! each read sees every transaction committed before it began.
//!
//! sqlx runs every SQLite connection on a thread of its own, so each query there costs two
//! cross-thread wake-ups: about 60% of the CPU of `GET /v1/operations/{id}` (BENCHMARKS.md).
//! A primary-key lookup in the page cache takes a few microseconds, less than those hand-offs,
//! so it runs where it is asked, briefly holding the async worker it runs on. Only the read of
//! an operation by its id goes here. A change made from such a read is saved with its version
//! checked, so a read taken before another save is refused there, as it is on sqlx. Writes and
//! the executor's claims stay on sqlx.

use crate::rows::{OperationRow, OPERATION_COLUMNS};
use crate::Result;
use certgate_core::TenantId;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Connections kept open between reads; more are opened when as many reads run at once.
const IDLE: usize = 8;

/// The readers of one SQLite file.
#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
    closed: AtomicBool,
}

impl Readers {
    /// Readers of the file at `path`, which the writer has already opened in WAL mode.
    pub(crate) fn open(path: PathBuf) -> Result<Readers> {
        let readers = Readers {
            path,
            idle: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
        };
        // One now, for its error: a file that cannot be read fails at start, not on a request.
        let first = readers.connect()?;
        readers.put_back(first);
        Ok(readers)
    }

    fn connect(&self) -> Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    fn put_back(&self, conn: rusqlite::Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE && !self.closed.load(Ordering::Acquire) {
            idle.push(conn);
        }
    }

    /// Closes the idle connections; a read under way closes its own when done.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Runs `read` on an idle connection (or a new one).
    fn with<T>(
        &self,
        read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.connect()?,
        };
        let out = read(&conn);
        self.put_back(conn);
        Ok(out?)
    }

    /// The operation `id` of `tenant`, as [`crate::Store::get_operation`] reads it.
    pub(crate) fn operation(&self, tenant: &TenantId, id: &str) -> Result<Option<OperationRow>> {
        self.with(|conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {OPERATION_COLUMNS} FROM operations WHERE tenant = ?1 AND id = ?2"
            ))?;
            let mut rows = stmt.query((tenant.as_str(), id))?;
            let Some(row) = rows.next()? else {
                return Ok(None);
            };
            let status = row
                .get_ref("status")?
                .as_str()?
                .to_owned()
                .try_into()
                .map_err(|e: String| {
                    rusqlite::Error::FromSqlConversionFailure(
                        4,
                        rusqlite::types::Type::Text,
                        e.into(),
                    )
                })?;
            Ok(Some(OperationRow {
                id: row.get("id")?,
                tenant: row.get::<_, String>("tenant")?.into(),
                request_hash: row.get("request_hash")?,
                provider: row.get("provider")?,
                status,
                version: row.get("version")?,
                next_run_at: row.get("next_run_at")?,
                lease_owner: row.get("lease_owner")?,
                body: row.get("body")?,
            }))
        })
    }
}
