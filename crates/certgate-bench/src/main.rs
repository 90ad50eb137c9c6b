//! `cargo run --release -p certgate-bench`: certgate's load benchmarks. Runs the real gateway
//! binary against mock CAs, prints every figure beside its target, and writes BENCHMARKS.md.
//! Sections can be picked by name: `-- policy http ops inflight sweep pacing watch`; a subset
//! writes `target/benchmarks-partial.md` instead. The `http` section needs `wrk`.

mod gateway;
mod harness;
mod mockca;
mod report;
mod sections;
mod wrk;

use report::Report;
use sections::{http, inflight, ops, pacing, policy, sweep, watch};

/// Every section, in the order a full run takes them.
const SECTIONS: [&str; 7] = [
    "policy", "http", "ops", "inflight", "sweep", "pacing", "watch",
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let all = SECTIONS;
    let mut sections: Vec<String> = std::env::args().skip(1).collect();
    if sections.is_empty() {
        sections = all.iter().map(|s| (*s).to_owned()).collect();
    }
    if let Some(bad) = sections.iter().find(|s| !all.contains(&s.as_str())) {
        anyhow::bail!("unknown section `{bad}`; sections: {}", all.join(" "));
    }
    // Refuse before anything runs, not ten minutes in.
    let wrk = if sections.iter().any(|s| s == "http") {
        Some(wrk::Wrk::find()?)
    } else {
        None
    };
    let started = chrono::Utc::now();
    gateway::ensure_built()?;
    let dir = std::env::temp_dir().join(format!("certgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut report = Report::default();
    for s in &sections {
        match s.as_str() {
            "policy" => policy::run(&mut report),
            "http" => http::run(&mut report, &dir, wrk.as_ref().expect("found above")).await?,
            "ops" => ops::run(&mut report, &dir).await?,
            "inflight" => inflight::run(&mut report, &dir).await?,
            "sweep" => sweep::run(&mut report, &dir).await?,
            "pacing" => pacing::run(&mut report, &dir).await?,
            "watch" => watch::run(&mut report, &dir).await?,
            _ => unreachable!("checked above"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let full = sections.len() == SECTIONS.len();
    let path = report::write_markdown(&report, &sections, full, started)?;
    println!("\nwrote {}", path.display());
    Ok(())
}
