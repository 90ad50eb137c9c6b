//! The `certgate` command line: `serve`, `check-config`, `quote`, `sweep`, `orders import`,
//! `orders assign` and `refunds report`.

mod cli;

use anyhow::Context;
use certgate::{load, DatabaseUrl};
use certgate_core::order::Order;
use certgate_core::TenantId;
use certgate_engine::{Background, Engine, Helpdesk};
use certgate_server::{AppState, Live, Shared};
use chrono::{DateTime, Utc};
use clap::Parser;
use cli::*;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.log_format);
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`): one line per CA call, retry and
/// status change. JSON lines carry the call's span fields (provider, action, operation, tenant,
/// attempt, http_status) beside the event's own.
fn init_logs(format: Option<LogFormat>) {
    let terminal = std::io::stderr().is_terminal();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info".into())
        // The Postgres driver logs connection parameters it ignores with their values
        // (`?sslpassword=...`): never, whatever RUST_LOG says.
        .add_directive(
            "sqlx_postgres::options=off"
                .parse()
                .expect("a valid directive"),
        );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format.unwrap_or(if terminal {
        LogFormat::Text
    } else {
        LogFormat::Json
    }) {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder.with_ansi(terminal).init(),
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            config,
            listen,
            database,
        } => serve(config, listen, &database),
        Command::Orders {
            command:
                OrdersCommand::Assign {
                    tenant,
                    provider,
                    orders,
                    config,
                    database,
                },
        } => assign_orders(&tenant, &provider, &orders, config.as_deref(), &database),
        Command::Orders {
            command:
                OrdersCommand::Import {
                    file,
                    tenant,
                    config,
                    database,
                },
        } => import_orders(&file, &tenant, config.as_deref(), &database),
        Command::Refunds {
            command:
                RefundsCommand::Report {
                    tenant,
                    format,
                    database,
                },
        } => {
            let runtime = tokio::runtime::Runtime::new()?;
            let totals = runtime.block_on(async {
                // A SQLite file no gateway has made yet holds no refunds.
                if let DatabaseUrl::SqliteFile(path) = database.url()? {
                    if !path.exists() {
                        return anyhow::Ok(Vec::new());
                    }
                }
                let store = database.connect_read_only().await?;
                let totals = certgate_engine::ledger::summary(&store, &tenant).await?;
                store.close().await;
                anyhow::Ok(totals)
            })?;
            let totals: Vec<_> = totals.into_iter().map(Into::into).collect();
            print!("{}", certgate::refunds::render(&totals, format)?);
            Ok(())
        }
        Command::Deliveries {
            command:
                DeliveriesCommand::PruneDead {
                    older_than_days,
                    tenant,
                    database,
                },
        } => {
            let before = Utc::now() - chrono::Duration::days(i64::from(older_than_days));
            let runtime = tokio::runtime::Runtime::new()?;
            let pruned = runtime.block_on(async {
                if let DatabaseUrl::SqliteFile(path) = database.url()? {
                    anyhow::ensure!(path.exists(), "no store at {}", path.display());
                }
                let store = database.connect().await?;
                let pruned = store
                    .prune_dead_deliveries(tenant.as_ref(), before.timestamp_millis())
                    .await?;
                store.close().await;
                anyhow::Ok(pruned)
            })?;
            println!("pruned {pruned} dead deliveries created before {before}");
            Ok(())
        }
        Command::CheckConfig { config } => {
            // The providers, the tenants with their keys (read from the environment) and CA
            // accounts, and the desk's users, checked together as `serve` checks them (a
            // providers file alone needs no key).
            let default_key = default_key();
            let (live, _, source) =
                certgate::load_live(config.as_deref(), default_key.as_deref(), "default")?;
            let registry = live.engine.registry;
            println!("{source}: ok");
            for p in registry.iter() {
                println!("  {:<10} kind={:<9} mode={}", p.name, p.kind, p.mode);
            }
            Ok(())
        }
        Command::Sweep {
            input,
            within_days,
            as_of,
            config,
            stats,
        } => sweep(&input, within_days, as_of, config.as_deref(), stats),
        Command::Quote {
            provider,
            intent,
            order,
            as_of,
            config,
        } => {
            let registry = load(config.as_deref())?.registry;
            let text = if order.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&order)
                    .with_context(|| format!("reading {}", order.display()))?
            };
            let order: Order = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a valid order", order.display()))?;
            let quote =
                registry.quote(&provider, &order, intent, as_of.unwrap_or_else(Utc::now))?;
            println!("{}", serde_json::to_string_pretty(&quote)?);
            Ok(())
        }
    }
}

fn sweep(
    input: &std::path::Path,
    within_days: u32,
    as_of: Option<DateTime<Utc>>,
    config: Option<&std::path::Path>,
    stats: bool,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let registry = load(config)?.registry;
    // Read in large blocks by the sweep itself: no buffering in between.
    let (reader, size): (Box<dyn std::io::Read>, Option<u64>) = if input.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), None)
    } else {
        let file = std::fs::File::open(input)
            .with_context(|| format!("cannot read {}", input.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let bar = progress_bar(size);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let as_of = as_of.unwrap_or_else(Utc::now);
    let out = certgate::sweep::run(&registry, reader, as_of, within_days, threads, &|n| {
        bar.inc(n)
    })?;
    bar.finish_and_clear();
    certgate::sweep::write_hits(&out.hits, threads, std::io::stdout().lock())?;
    report_bad_lines(&out.errors, out.invalid);
    if stats {
        let peak = certgate::sweep::peak_rss()
            .map_or("unknown".into(), |b| format!("{:.1} MB", b as f64 / 1e6));
        eprintln!(
            "swept {} lines ({} invalid) in {:.3}s on {threads} threads: {} orders within {within_days} days; peak RSS {peak}",
            out.lines,
            out.invalid,
            started.elapsed().as_secs_f64(),
            out.hits.len()
        );
    }
    Ok(())
}

fn import_orders(
    file: &std::path::Path,
    tenant: &TenantId,
    config: Option<&std::path::Path>,
    database: &DatabaseArgs,
) -> anyhow::Result<()> {
    use std::io::BufReader;
    let loaded = load(config)?;
    known_tenant(&loaded, tenant)?;
    let (reader, size): (Box<dyn std::io::BufRead>, Option<u64>) = if file.as_os_str() == "-" {
        (Box::new(BufReader::new(std::io::stdin())), None)
    } else {
        let f =
            std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(BufReader::with_capacity(1 << 20, f)), size)
    };
    let bar = progress_bar(size);
    let started = std::time::Instant::now();
    let runtime = tokio::runtime::Runtime::new()?;
    let out = runtime.block_on(async {
        let store = database.connect().await?;
        let out =
            certgate::orders::import(&store, &loaded.registry, tenant, reader, Utc::now(), &|n| {
                bar.inc(n)
            })
            .await?;
        store.close().await;
        anyhow::Ok(out)
    })?;
    bar.finish_and_clear();
    report_bad_lines(&out.errors, out.invalid);
    println!(
        "imported {} lines as watched orders of tenant {tenant} in {:.1}s ({} bad lines); the gateway's next pass checks them",
        out.imported,
        started.elapsed().as_secs_f64(),
        out.invalid
    );
    if out.invalid > 0 {
        anyhow::bail!("{} lines were not imported", out.invalid);
    }
    Ok(())
}

fn assign_orders(
    tenant: &TenantId,
    provider: &str,
    orders: &[String],
    config: Option<&std::path::Path>,
    database: &DatabaseArgs,
) -> anyhow::Result<()> {
    let loaded = load(config)?;
    known_tenant(&loaded, tenant)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let moves = runtime.block_on(async {
        let store = database.connect().await?;
        let moves = certgate::orders::assign(
            &store,
            &loaded.registry,
            tenant,
            provider,
            orders,
            Utc::now(),
        )
        .await;
        store.close().await;
        moves
    })?;
    let own = loaded
        .file
        .tenants
        .iter()
        .find(|t| *tenant == *t.id)
        .is_some_and(|t| {
            let channel = loaded.registry.get(provider).and_then(|e| e.client_name());
            t.credentials.contains_key(provider)
                || channel.is_some_and(|c| t.credentials.contains_key(c))
        });
    if own {
        eprintln!(
            "note: tenant {tenant} calls {provider} through its own CA account, not the shared one: these orders are now kept from the other tenants, but {tenant}'s own calls never reach them in the shared account"
        );
    }
    for (order, before) in orders.iter().zip(&moves) {
        match before.as_deref() {
            None => println!("{provider} {order}: now tenant {tenant}'s (it was unbound)"),
            Some(t) if *tenant == *t => println!("{provider} {order}: already tenant {tenant}'s"),
            Some(t) => println!("{provider} {order}: moved from tenant {t} to tenant {tenant}"),
        }
    }
    Ok(())
}

/// `tenant` is `default` or one of the config's tenants.
fn known_tenant(loaded: &certgate::Loaded, tenant: &TenantId) -> anyhow::Result<()> {
    let known = *tenant == "default" || loaded.file.tenants.iter().any(|t| *tenant == *t.id);
    if !known {
        let ids: Vec<&str> = loaded.file.tenants.iter().map(|t| t.id.as_str()).collect();
        anyhow::bail!(
            "--tenant: no tenant `{tenant}` in {}; tenants: default{}{}",
            loaded.source,
            if ids.is_empty() { "" } else { ", " },
            ids.join(", ")
        );
    }
    Ok(())
}

/// The first bad lines of an input (line number, what is wrong), and how many more there were
/// of the `invalid` ones.
fn report_bad_lines(shown: &[(u64, String)], invalid: u64) {
    for (line, message) in shown {
        eprintln!("line {line}: {message}");
    }
    if invalid > shown.len() as u64 {
        eprintln!("... and {} more bad lines", invalid - shown.len() as u64);
    }
}

/// A progress bar over `size` bytes on a terminal; hidden otherwise.
fn progress_bar(size: Option<u64>) -> indicatif::ProgressBar {
    match size {
        Some(len) if std::io::stderr().is_terminal() => {
            let bar = indicatif::ProgressBar::new(len);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        }
        _ => indicatif::ProgressBar::hidden(),
    }
}

fn serve(
    config: Option<PathBuf>,
    listen: SocketAddr,
    database: &DatabaseArgs,
) -> anyhow::Result<()> {
    let url = database.url()?;
    let (live, file, source) = live_config(config.as_deref())?;
    // One gateway per SQLite file: the lock first, then the leases a dead predecessor left.
    let lock = certgate_store::StoreLock::acquire(&url.store_url())?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let store = database.connect().await?;
        if let Some(lock) = &lock {
            store.release_stale_leases(lock).await?;
        }
        let database = url;
        let mut engine = Engine::new(live.engine, store);
        engine.executor = file.executor;
        engine.webhooks = file.webhooks;
        engine.events = file.events;
        engine.watch = file.watch;
        let mut shared = Shared::with_engine(engine, live.access);
        shared.server = file.server.clone();
        shared.desk = file.desk;
        let state = AppState::from(shared);
        tokio::spawn(reload_on_hangup(state.clone(), config.clone(), file));
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        let background = Background::start(&state.engine);
        let shutdown = shutdown_signal()?;
        tracing::info!(%addr, providers = %source, %database, "certgate listening");
        println!("certgate listening on http://{addr}");
        certgate_server::serve(listener, state, shutdown).await?;
        background.stop().await;
        tracing::info!("certgate stopped");
        Ok(())
    })
}

/// `CERTGATE_API_KEY`, the key of tenant `default`, if set.
fn default_key() -> Option<String> {
    std::env::var("CERTGATE_API_KEY")
        .ok()
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
}

/// The config file read and checked: what a reload replaces (providers, tenants and their keys,
/// the helpdesk, the desk's users), the rest of the file, and where it came from. Every problem at once.
fn live_config(
    config: Option<&std::path::Path>,
) -> anyhow::Result<(
    Live,
    certgate_server::config::FileConfig,
    certgate::ConfigSource,
)> {
    let username = std::env::var("CERTGATE_RESELLER_USERNAME").unwrap_or_else(|_| "default".into());
    let (mut live, file, source) =
        certgate::load_live(config, default_key().as_deref(), &username)?;
    if live.engine.tenants.is_empty() {
        anyhow::bail!(
            "CERTGATE_API_KEY is not set: the gateway will not start without an API key.\n\
             Set one, e.g.  export CERTGATE_API_KEY=$(openssl rand -hex 32)\n\
             and send it as `Authorization: Bearer <key>` (or configure [[tenants]])."
        );
    }
    let helpdesk = match &file.helpdesk {
        None => None,
        Some(h) => Some(Helpdesk {
            url: h.url.clone(),
            secret: match &h.secret {
                None => None,
                Some(s) => Some(s.resolve().ok_or_else(|| {
                    anyhow::anyhow!(
                        "helpdesk.secret: ${{{}}} is not set in the environment",
                        s.var
                    )
                })?),
            },
        }),
    };
    for p in live.engine.registry.iter().filter(|p| p.client.is_some()) {
        for (name, secret) in p.api.iter().flat_map(|a| a.credentials.iter()) {
            if secret.resolve().is_none() {
                tracing::warn!(provider = %p.name, credential = %name, variable = %secret.var,
                    "credential not set: automated steps of this provider will fail until it is");
            }
        }
    }
    live.engine.helpdesk = helpdesk;
    Ok((live, file, source))
}

/// SIGHUP (`systemctl reload`): the config file is read again. A valid one replaces the
/// providers, tenants and helpdesk for new work (work under way finishes as it started); the
/// executor, webhook and event settings and the CA accounts' pace take a restart, and a change
/// to them is logged as such. An invalid file is logged with every problem and changes nothing.
async fn reload_on_hangup(
    state: AppState,
    config: Option<PathBuf>,
    mut running: certgate_server::config::FileConfig,
) {
    #[cfg(unix)]
    {
        let Ok(mut hangup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("cannot listen for SIGHUP: the config is read at start only");
            return;
        };
        while hangup.recv().await.is_some() {
            match live_config(config.as_deref()) {
                Ok((live, file, source)) => {
                    let restart = [
                        ("executor", file.executor != running.executor),
                        ("webhooks", file.webhooks != running.webhooks),
                        ("events", file.events != running.events),
                        ("watch", file.watch != running.watch),
                        ("server", file.server != running.server),
                        ("desk", file.desk != running.desk),
                    ];
                    for (section, changed) in restart {
                        if changed {
                            tracing::warn!(
                                section,
                                "this section changed: it takes effect at the next restart"
                            );
                        }
                    }
                    state.reload(live);
                    running = file;
                    tracing::info!(config = %source, "config reloaded");
                }
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "config not reloaded: the running one stays");
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (state, config, running);
}

fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    // Registered now, before the gateway says it listens: a SIGTERM from then on is a clean
    // stop, never the default kill.
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    Ok(async move {
        #[cfg(unix)]
        let term = async move {
            term.recv().await;
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            () = term => {},
        }
    })
}
