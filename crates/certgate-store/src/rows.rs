//! The rows the store reads and writes, and the side effects that commit with an operation
//! (tickets, events and their deliveries, audit entries).

use crate::Backend;
use certgate_core::event::{DeliveryStatus, DeliveryTarget, EventType};
use certgate_core::operation::Status;
use certgate_core::ticket::TicketStatus;
use certgate_core::TenantId;
use sqlx::{Any, Transaction};

pub(crate) const OPERATION_COLUMNS: &str =
    "id, tenant, request_hash, provider, status, version, next_run_at, lease_owner, body";

/// An operation as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OperationRow {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub tenant: TenantId,
    pub request_hash: String,
    pub provider: String,
    #[sqlx(try_from = "String")]
    pub status: Status,
    pub version: i64,
    pub next_run_at: Option<i64>,
    pub lease_owner: Option<String>,
    /// The operation as JSON.
    pub body: String,
}

/// A new operation.
#[derive(Debug)]
pub struct NewOperation<'a> {
    pub id: &'a str,
    pub tenant: &'a TenantId,
    pub idempotency_key: &'a str,
    pub request_hash: &'a str,
    pub provider: &'a str,
    pub status: Status,
    pub now: i64,
    pub next_run_at: Option<i64>,
    pub body: String,
}

/// What `insert_operation` found.
#[derive(Debug)]
pub enum Inserted {
    New,
    /// The key was used before: this is that operation.
    Existing(OperationRow),
    /// The CA order belongs to another tenant: nothing was written.
    OwnedElsewhere,
}

/// A guarded write of an operation.
#[derive(Debug)]
pub struct SaveOperation<'a> {
    pub id: &'a str,
    pub expected_version: i64,
    /// The executor that holds the lease (the write fails if it lost it); `None` for the API.
    pub owner: Option<&'a str>,
    /// Keep the lease after the write (the executor goes on with the next step).
    pub keep_lease: bool,
    /// Leave `next_run_at` as it is (the change moved no step).
    pub keep_schedule: bool,
    pub status: Status,
    pub now: i64,
    pub next_run_at: Option<i64>,
    pub body: String,
}

#[derive(Debug, Default)]
pub struct OperationFilter<'a> {
    pub status: Option<Status>,
    pub provider: Option<&'a str>,
    /// Cursor: only operations with a smaller id.
    pub before: Option<&'a str>,
    pub limit: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketRow {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub tenant: TenantId,
    pub operation_id: String,
    #[sqlx(try_from = "String")]
    pub status: TicketStatus,
    pub body: String,
}

/// A ticket written with an operation.
#[derive(Debug, Clone)]
pub enum TicketWrite {
    Open {
        id: String,
        tenant: TenantId,
        operation_id: String,
        /// The ticket's CA (the desk's queue filters by it).
        provider: String,
        /// When its request must go by (ms; the desk's queue is ordered by it).
        due_at: Option<i64>,
        now: i64,
        body: String,
    },
    /// Moves a ticket on from `from` (the write fails if it is no longer in that status).
    Update {
        id: String,
        from: TicketStatus,
        to: TicketStatus,
        now: i64,
        body: String,
    },
}

/// An event, written with the change it tells of.
#[derive(Debug, Clone)]
pub struct EventWrite {
    pub id: String,
    pub tenant: TenantId,
    pub kind: EventType,
    /// What the event is about (an operation's id): deliveries keep this order.
    pub stream: String,
    pub now: i64,
    /// The event as JSON, as the feed and webhooks carry it.
    pub body: String,
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    pub seq: i64,
    pub id: String,
    #[sqlx(rename = "type", try_from = "String")]
    pub kind: EventType,
    pub created_at: i64,
    pub body: String,
}

pub(crate) const EVENT_COLUMNS: &str = "seq, id, type, created_at, body";

/// A delivery to queue with an event.
#[derive(Debug, Clone)]
pub struct DeliveryWrite {
    pub tenant: TenantId,
    pub event_id: String,
    pub event_type: EventType,
    pub target: DeliveryTarget,
    pub stream: String,
    /// Where it was addressed when queued (for the record: each attempt goes where the
    /// config says then).
    pub url: String,
    pub payload: String,
    pub now: i64,
    /// When it is `dead` if never delivered.
    pub expires_at: i64,
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    #[sqlx(try_from = "String")]
    pub tenant: TenantId,
    pub event_id: String,
    #[sqlx(try_from = "String")]
    pub event_type: EventType,
    #[sqlx(try_from = "String")]
    pub target: DeliveryTarget,
    pub stream: String,
    pub payload: String,
    #[sqlx(try_from = "String")]
    pub status: DeliveryStatus,
    /// Attempts made, the one just claimed included.
    pub attempts: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub next_attempt_at: i64,
    pub expires_at: i64,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

pub(crate) const DELIVERY_COLUMNS: &str = "id, tenant, event_id, event_type, target, stream, \
     payload, status, attempts, last_status_code, last_error, next_attempt_at, expires_at, \
     created_at, delivered_at";

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<u16>,
    /// Why it failed (`None`: delivered).
    pub error: Option<String>,
    /// Failed: when to try again (`None`: the delivery is dead).
    pub next_attempt_at: Option<i64>,
    pub now: i64,
}

/// What `/metrics` counts in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counts {
    pub operations: Vec<(Status, i64)>,
    pub open_tickets: i64,
    /// Operations nothing would run ([`crate::Store::repair_stalled`]).
    pub stalled: i64,
}

/// The undelivered deliveries of a tenant, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Backlog {
    #[sqlx(try_from = "String")]
    pub tenant: TenantId,
    pub pending: i64,
    pub dead: i64,
    /// When the oldest pending one was queued.
    pub oldest_pending: Option<i64>,
}

/// One line of the audit log: who did what to which, when, and how it ended.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub tenant: TenantId,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
}

impl AuditEntry {
    pub(crate) async fn write(&self, tx: &mut Transaction<'_, Any>) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO audit (tenant, at, actor, action, target, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(self.tenant.as_str())
        .bind(self.at)
        .bind(&self.actor)
        .bind(&self.action)
        .bind(&self.target)
        .bind(&self.outcome)
        .bind(&self.detail)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub detail: String,
}

/// The side effects that commit with an operation write.
#[derive(Debug, Default)]
pub struct Effects {
    pub tickets: Vec<TicketWrite>,
    pub events: Vec<EventWrite>,
    pub deliveries: Vec<DeliveryWrite>,
    pub audit: Vec<AuditEntry>,
    /// The operation's refund record, for the ledger.
    pub refund: Option<crate::RefundWrite>,
    /// The watched order the operation is about.
    pub watch: Option<crate::WatchLink>,
    /// A CA order the tenant turned out not to own (the CA's read did not match): its claim
    /// is let go of.
    pub disown: Option<crate::Disown>,
}

impl Effects {
    /// Writes every effect; false if a ticket was no longer in the expected status.
    pub(crate) async fn write(
        &self,
        tx: &mut Transaction<'_, Any>,
        backend: Backend,
    ) -> Result<bool, sqlx::Error> {
        for t in &self.tickets {
            let n = match t {
                TicketWrite::Open { id, tenant, operation_id, provider, due_at, now, body } => sqlx::query(
                    "INSERT INTO tickets (id, tenant, operation_id, status, created_at, updated_at, body, provider, due_at) \
                     VALUES ($1, $2, $3, $4, $5, $5, $6, $7, $8)",
                )
                .bind(id)
                .bind(tenant.as_str())
                .bind(operation_id)
                .bind(TicketStatus::Open.as_str())
                .bind(now)
                .bind(body)
                .bind(provider)
                .bind(due_at)
                .execute(&mut **tx)
                .await?
                .rows_affected(),
                TicketWrite::Update { id, from, to, now, body } => sqlx::query(
                    "UPDATE tickets SET status = $1, updated_at = $2, body = $3 WHERE id = $4 AND status = $5",
                )
                .bind(to.as_str())
                .bind(now)
                .bind(body)
                .bind(id)
                .bind(from.as_str())
                .execute(&mut **tx)
                .await?
                .rows_affected(),
            };
            if n != 1 {
                return Ok(false);
            }
        }
        if let Some(first) = self.events.first() {
            if backend == Backend::Postgres {
                // A tenant's events commit in the order of their `seq`, so a feed reader
                // that passed an event never misses one committed after it.
                sqlx::query(
                    "SELECT COUNT(*) FROM (SELECT pg_advisory_xact_lock(hashtext('events:' || $1))) AS l",
                )
                .bind(first.tenant.as_str())
                .execute(&mut **tx)
                .await?;
            }
        }
        for e in &self.events {
            sqlx::query(
                "INSERT INTO events (id, tenant, type, stream, created_at, body) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&e.id)
            .bind(e.tenant.as_str())
            .bind(e.kind.as_str())
            .bind(&e.stream)
            .bind(e.now)
            .bind(&e.body)
            .execute(&mut **tx)
            .await?;
        }
        for d in &self.deliveries {
            sqlx::query(
                "INSERT INTO deliveries (tenant, event_id, event_type, target, stream, url, payload, \
                 status, next_attempt_at, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $9)",
            )
            .bind(d.tenant.as_str())
            .bind(&d.event_id)
            .bind(d.event_type.as_str())
            .bind(d.target.as_str())
            .bind(&d.stream)
            .bind(&d.url)
            .bind(&d.payload)
            .bind(DeliveryStatus::Pending.as_str())
            .bind(d.now)
            .bind(d.expires_at)
            .execute(&mut **tx)
            .await?;
        }
        for a in &self.audit {
            a.write(tx).await?;
        }
        if let Some(r) = &self.refund {
            r.write(tx).await?;
        }
        if let Some(w) = &self.watch {
            w.write(tx).await?;
        }
        if let Some(d) = &self.disown {
            d.write(tx).await?;
        }
        Ok(true)
    }
}
