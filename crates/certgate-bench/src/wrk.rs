//! The HTTP load generator: `wrk`, a separate C program, so that the gateway is measured by a
//! client faster than itself. A Lua script gives each target its method, headers and body, and
//! prints wrk's own summary (requests, errors, latency percentiles) as one JSON line.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How to get the generator when it is missing.
pub const INSTALL: &str =
    "sudo apt-get install wrk   (Debian/Ubuntu; or build it from https://github.com/wg/wrk)";

/// Marks the summary line among wrk's own output.
const MARK: &str = "CERTGATE-WRK ";

/// The Lua script: `{body}` and `{headers}` are filled in per target; `done` prints the
/// summary (durations in microseconds).
const SCRIPT: &str = r#"
wrk.method = "{method}"
{body}
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{mark}{"requests":%d,"duration_us":%d,"errors":%d,"status_errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"#;

/// The `wrk` found on the `PATH`.
#[derive(Debug, Clone)]
pub struct Wrk {
    program: PathBuf,
    /// Its first line of `wrk -v`, e.g. `wrk 4.1.0 [epoll] ...`.
    pub version: String,
}

/// One request to repeat.
#[derive(Debug, Clone)]
pub struct Target {
    pub method: &'static str,
    pub url: String,
    pub body: Option<String>,
    pub bearer: Option<&'static str>,
}

/// What one run measured.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Run {
    requests: u64,
    duration_us: u64,
    /// Connect, read, write errors and timeouts.
    errors: u64,
    /// Answers that were not 2xx or 3xx.
    status_errors: u64,
    p50_us: u64,
    p99_us: u64,
}

impl Run {
    pub fn per_sec(&self) -> f64 {
        self.requests as f64 / (self.duration_us as f64 / 1e6)
    }
    pub fn p50(&self) -> Duration {
        Duration::from_micros(self.p50_us)
    }
    pub fn p99(&self) -> Duration {
        Duration::from_micros(self.p99_us)
    }
    pub fn errors(&self) -> u64 {
        self.errors + self.status_errors
    }
}

impl Wrk {
    /// `wrk` on the `PATH`, or an error that says how to install it.
    pub fn find() -> anyhow::Result<Wrk> {
        let program = PathBuf::from("wrk");
        let out = Command::new(&program).arg("-v").output().map_err(|e| {
            anyhow::anyhow!(
                "the http section measures with wrk, an independent load generator, and will not \
                 report HTTP figures without it ({e}). Install it: {INSTALL}"
            )
        })?;
        // `wrk -v` prints its version and usage, and exits 1.
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let version = text
            .lines()
            .find(|l| l.starts_with("wrk "))
            .map(|l| l.split("Copyright").next().unwrap_or(l))
            .unwrap_or("wrk (version unknown)")
            .trim()
            .to_owned();
        Ok(Wrk { program, version })
    }

    /// Loads `target` with `connections` connections on one thread for `duration`.
    pub fn run(
        &self,
        dir: &Path,
        target: &Target,
        connections: usize,
        duration: Duration,
    ) -> anyhow::Result<Run> {
        let script = dir.join("wrk-target.lua");
        std::fs::write(&script, script_for(dir, target)?)?;
        let out = Command::new(&self.program)
            .args(["-t1", &format!("-c{connections}")])
            .arg(format!("-d{}s", duration.as_secs().max(1)))
            .args(["--timeout", "10s", "-s"])
            .arg(&script)
            .arg(&target.url)
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        anyhow::ensure!(
            out.status.success(),
            "wrk failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix(MARK))
            .ok_or_else(|| anyhow::anyhow!("wrk printed no summary: {stdout}"))?;
        Ok(serde_json::from_str(line)?)
    }
}

/// The Lua script for `target`; a body is written to a file beside it and read from there, so
/// that it needs no quoting.
fn script_for(dir: &Path, target: &Target) -> anyhow::Result<String> {
    let body = match &target.body {
        Some(body) => {
            let file = dir.join("wrk-body.json");
            std::fs::write(&file, body)?;
            format!(
                "local f = assert(io.open({:?}, \"rb\"))\nwrk.body = f:read(\"*a\")\nf:close()",
                file.display().to_string()
            )
        }
        None => String::new(),
    };
    let mut headers = String::new();
    if target.body.is_some() {
        headers.push_str("wrk.headers[\"Content-Type\"] = \"application/json\"\n");
    }
    if let Some(key) = target.bearer {
        headers.push_str(&format!(
            "wrk.headers[\"Authorization\"] = \"Bearer {key}\"\n"
        ));
    }
    Ok(SCRIPT
        .replace("{method}", target.method)
        .replace("{body}", &body)
        .replace("{headers}", &headers)
        .replace("{mark}", MARK))
}

/// The median of three or more runs by `key` (the middle one; the lower middle of an even
/// count).
pub fn median(runs: &[Run], key: impl Fn(&Run) -> f64) -> f64 {
    let mut values: Vec<f64> = runs.iter().map(key).collect();
    values.sort_by(f64::total_cmp);
    values[(values.len() - 1) / 2]
}
