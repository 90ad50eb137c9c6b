//! One gateway per SQLite file: `serve` holds an exclusive lock on `<file>.lock` (the
//! operating system's file lock, released when the process ends, however it ends) before it
//! releases the leases a dead predecessor left. A second `serve` on the file is refused at
//! once, naming the process that holds it. Other commands (reports, imports) take no lock and
//! touch no lease. Postgres is shared by many gateways and needs none.

use crate::{Result, StoreError};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

/// The lock on a SQLite store file, held while this value lives.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
    path: PathBuf,
}

impl StoreLock {
    /// Locks the store of `url` for this process: `None` for a store that needs no lock (in
    /// memory, Postgres).
    pub fn acquire(url: &str) -> Result<Option<StoreLock>> {
        let Some(file) = url.strip_prefix("sqlite://") else {
            return Ok(None);
        };
        let path = PathBuf::from(format!("{}.lock", file.split('?').next().unwrap_or(file)));
        let shown = path.display().to_string();
        let fail = |e: std::io::Error| StoreError::Lock {
            path: shown.clone(),
            cause: e.to_string(),
        };
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(fail)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "a process that did not say which".to_owned(),
                    pid => format!("process {pid}"),
                };
                return Err(StoreError::Locked {
                    path: shown,
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(fail(e)),
        }
        // Who holds it, for the next one to name.
        lock.set_len(0).map_err(fail)?;
        lock.seek(SeekFrom::Start(0)).map_err(fail)?;
        write!(lock, "{}", std::process::id()).map_err(fail)?;
        lock.flush().map_err(fail)?;
        Ok(Some(StoreLock { _file: lock, path }))
    }

    /// The lock file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}
