//! The gateway under test: the real `certgate` binary as a child process, so its memory and
//! CPU are its own.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const KEY: &str = "bench-key";

/// The `certgate` binary next to this one (built by `ensure_built`).
pub fn binary() -> PathBuf {
    let me = std::env::current_exe().expect("the bench's own path");
    me.with_file_name(format!("certgate{}", std::env::consts::EXE_SUFFIX))
}

/// Builds the release `certgate` binary the benchmarks run.
pub fn ensure_built() -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "certgate", "--bin", "certgate"])
        .status()?;
    anyhow::ensure!(status.success(), "building certgate failed");
    Ok(())
}

/// A running gateway, killed when dropped.
pub struct Gateway {
    child: Child,
    pub base: String,
}

impl Gateway {
    pub fn start(config: &Path, database: &str) -> anyhow::Result<Gateway> {
        let mut child = Command::new(binary())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database",
                database,
                "--config",
            ])
            .arg(config)
            .env("CERTGATE_API_KEY", KEY)
            .env("DIGICERT_API_KEY", "bench-devkey")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout")).read_line(&mut line)?;
        let base = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        anyhow::ensure!(
            base.starts_with("http://"),
            "the gateway did not start: {line}"
        );
        Ok(Gateway { child, base })
    }

    /// Peak resident memory so far, in bytes.
    pub fn peak_rss(&self) -> Option<u64> {
        peak_rss(self.child.id())
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmHWM` of a process (Linux).
pub fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}
