//! The report: every figure printed beside its target as it is measured, then written as
//! BENCHMARKS.md (a full run) or `target/benchmarks-partial.md` (a subset), a table of the
//! figures followed by the notes on what bounds each one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One measured figure.
struct Figure {
    section: &'static str,
    what: String,
    value: String,
    target: String,
    /// None: no target.
    pass: Option<bool>,
}

#[derive(Default)]
pub struct Report {
    figures: Vec<Figure>,
}

impl Report {
    pub fn add(
        &mut self,
        section: &'static str,
        what: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        pass: Option<bool>,
    ) {
        let f = Figure {
            section,
            what: what.into(),
            value: value.into(),
            target: target.into(),
            pass,
        };
        let verdict = match f.pass {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        println!(
            "{:<9} {:<58} {:>22}  {:<18} {verdict}",
            f.section, f.what, f.value, f.target
        );
        self.figures.push(f);
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<u64>()
                    .unwrap_or(0)
            })
        })
        .map_or("?".into(), |kb| {
            format!("{:.1} GiB", kb as f64 / 1_048_576.0)
        });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!(
        "{cores} cores ({cpu}), {mem} RAM, {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// Writes the report: BENCHMARKS.md when `full` (every section ran), `target/benchmarks-partial.md`
/// otherwise. Returns the path written.
pub fn write_markdown(
    report: &Report,
    sections: &[String],
    full: bool,
    started: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<PathBuf> {
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut md = String::new();
    writeln!(md, "# certgate benchmarks\n")?;
    writeln!(
        md,
        "Written by `cargo run --release -p certgate-bench` ({}) on {} at commit `{rev}`.",
        sections.join(" "),
        started.format("%Y-%m-%d %H:%M UTC")
    )?;
    writeln!(
        md,
        "Machine: {}. The gateway under test is the release `certgate` binary in its own process;",
        machine()
    )?;
    writeln!(md, "the load generator and the mock CAs share the same cores, so every HTTP figure is measured")?;
    writeln!(md, "beside its ceiling in the same run. Criterion micro-benchmarks of the policy: `cargo bench -p certgate-bench`.\n")?;
    writeln!(
        md,
        "| section | figure | value | target | verdict |\n|---|---|---|---|---|"
    )?;
    for f in &report.figures {
        let verdict = match f.pass {
            Some(true) => "met",
            Some(false) => "**missed**",
            None => "",
        };
        writeln!(
            md,
            "| {} | {} | {} | {} | {verdict} |",
            f.section, f.what, f.value, f.target
        )?;
    }
    md.push_str(NOTES);
    // A subset must not replace the whole file's figures with its own few.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = if full {
        root.join("BENCHMARKS.md")
    } else {
        root.join("target/benchmarks-partial.md")
    };
    std::fs::write(&path, md)?;
    Ok(path)
}

/// What bounds each figure, kept with the numbers.
const NOTES: &str = include_str!("notes.md");
