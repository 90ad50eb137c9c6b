//! The command line as clap reads it: the subcommands, their arguments and the `--database`
//! options every store-using command shares.

use anyhow::Context;
use certgate::DatabaseUrl;
use certgate_core::order::instant;
use certgate_core::quote::Intent;
use certgate_core::TenantId;
use certgate_store::Store;
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One HTTP API to cancel, revoke and refund certificate orders across CAs.
#[derive(Debug, Parser)]
#[command(name = "certgate", version, about)]
pub struct Cli {
    /// Log lines as JSON objects or as text (default: JSON unless stderr is a terminal).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway. The API key comes from the CERTGATE_API_KEY environment variable.
    Serve {
        /// Provider config (default: ./providers.toml, else the built-in copy).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Watched orders (API.md, "Watched orders").
    Orders {
        #[command(subcommand)]
        command: OrdersCommand,
    },
    /// The refund ledger (API.md, "Refund ledger").
    Refunds {
        #[command(subcommand)]
        command: RefundsCommand,
    },
    /// Webhook and helpdesk deliveries (API.md, "Events and webhooks").
    Deliveries {
        #[command(subcommand)]
        command: DeliveriesCommand,
    },
    /// Validate a provider config and list its providers.
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the orders whose refund deadline falls within N days, soonest first, each with
    /// its quote (JSON lines). Streams its input; shows progress on a terminal.
    Sweep {
        /// JSON lines, one `{"provider": ..., "order": {...}}` each; `-` reads stdin.
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        within_days: u32,
        /// The instant to decide at (RFC 3339; default: now).
        #[arg(long, value_parser = instant::parse)]
        as_of: Option<DateTime<Utc>>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print counts, time and peak memory to stderr at the end.
        #[arg(long)]
        stats: bool,
    },
    /// Print the quote for one order (JSON), as POST /v1/quotes would answer.
    Quote {
        #[arg(long)]
        provider: String,
        /// cancel, revoke or refund
        #[arg(long)]
        intent: Intent,
        /// A JSON file with the order facts (API.md's `order` object); `-` reads stdin.
        #[arg(long)]
        order: PathBuf,
        /// The instant to decide at (RFC 3339; default: now).
        #[arg(long, value_parser = instant::parse)]
        as_of: Option<DateTime<Utc>>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// The store a command works on.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// Store: sqlite::memory:, sqlite://FILE, a file path, or postgres://...
    #[arg(
        long,
        env = "CERTGATE_DATABASE_URL",
        default_value = "sqlite://certgate.db"
    )]
    pub database: String,
    /// How long to wait for the store at start before giving up with its cause.
    #[arg(
        long,
        env = "CERTGATE_DATABASE_TIMEOUT_SECONDS",
        default_value_t = 10,
        value_parser = clap::value_parser!(u64).range(1..=600)
    )]
    pub database_timeout_seconds: u64,
}

impl DatabaseArgs {
    pub fn url(&self) -> anyhow::Result<DatabaseUrl> {
        self.database
            .parse()
            .map_err(|e| anyhow::anyhow!("--database: {e}"))
    }

    /// Connects (and migrates). No lease is touched: a gateway may be running on it.
    pub async fn connect(&self) -> anyhow::Result<Store> {
        let url = self.url()?;
        Store::connect_within(&url.store_url(), self.timeout())
            .await
            .with_context(|| format!("cannot open the store {url}"))
    }

    /// Connects to read only (a report beside a running gateway).
    pub async fn connect_read_only(&self) -> anyhow::Result<Store> {
        let url = self.url()?;
        Store::connect_read_only(&url.store_url(), self.timeout())
            .await
            .with_context(|| format!("cannot open the store {url} to read it"))
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.database_timeout_seconds)
    }
}

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// Give CA orders of a provider's shared CA account to a tenant (claimed, or moved from
    /// the tenant that had them), with an audit entry for each tenant concerned. Operations
    /// and watches on them by any other tenant are refused from then on.
    Assign {
        /// The tenant the orders belong to from now on (`default`: the CERTGATE_API_KEY tenant).
        #[arg(long)]
        tenant: TenantId,
        /// The provider whose shared CA account holds the orders.
        #[arg(long)]
        provider: String,
        /// The orders' ids at the CA (`supplier_order_id`, or `platform_order_id` on the
        /// platform channel).
        #[arg(required = true)]
        orders: Vec<String>,
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
    /// Watch many orders at once: JSON lines, one `{"provider", "order"}` each (what
    /// `PUT /v1/orders/{id}` takes). Bad lines are reported and skipped (exit status 1);
    /// shows progress on a terminal.
    Import {
        /// The JSON-lines file; `-` reads stdin.
        file: PathBuf,
        /// The tenant the orders belong to (`default`: the CERTGATE_API_KEY tenant).
        #[arg(long, default_value = "default")]
        tenant: TenantId,
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum RefundsCommand {
    /// The tenant's refunds summed by provider and currency: expected, credited,
    /// outstanding, overdue and mismatched (as GET /v1/refunds/summary).
    Report {
        #[arg(long, default_value = "default")]
        tenant: TenantId,
        #[arg(long, value_enum, default_value = "table")]
        format: certgate::refunds::Format,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeliveriesCommand {
    /// Delete dead deliveries (kept, and their events, until redelivered or pruned here).
    /// Their events go with the gateway's next prune once past `[events] retention_days`.
    PruneDead {
        /// Only those created at least this many days ago (0: every dead delivery).
        #[arg(long, value_parser = clap::value_parser!(u32).range(0..=36_500))]
        older_than_days: u32,
        /// Only this tenant's, to its webhook and to the helpdesk (default: every tenant's).
        #[arg(long)]
        tenant: Option<TenantId>,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}
