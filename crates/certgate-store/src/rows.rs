//! The rows the store reads and writes, and the side effects that commit with an operation.

use certgate_core::operation::Status;
use certgate_core::ticket::TicketStatus;
use sqlx::{Any, Transaction};

pub(crate) const OPERATION_COLUMNS: &str =
    "id, tenant, request_hash, provider, status, version, next_run_at, lease_owner, body";

/// An operation as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OperationRow {
    pub id: String,
    pub tenant: String,
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
    pub tenant: &'a str,
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
    pub tenant: String,
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
        tenant: String,
        operation_id: String,
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

/// A webhook to deliver, in order within its stream.
#[derive(Debug, Clone)]
pub struct OutboxWrite {
    pub tenant: String,
    pub stream: String,
    pub url: String,
    /// The event the payload is, if it is one (sent as `certgate-event-id`).
    pub event_id: Option<String>,
    pub payload: String,
    pub now: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub tenant: String,
    pub stream: String,
    pub url: String,
    pub event_id: Option<String>,
    pub payload: String,
    pub attempts: i64,
}

/// One line of the audit log: who did what to which, when, and how it ended.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub tenant: String,
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
        .bind(&self.tenant)
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
    pub outbox: Vec<OutboxWrite>,
    pub audit: Vec<AuditEntry>,
}

impl Effects {
    /// Writes every effect; false if a ticket was no longer in the expected status.
    pub(crate) async fn write(&self, tx: &mut Transaction<'_, Any>) -> Result<bool, sqlx::Error> {
        for t in &self.tickets {
            let n = match t {
                TicketWrite::Open { id, tenant, operation_id, now, body } => sqlx::query(
                    "INSERT INTO tickets (id, tenant, operation_id, status, created_at, updated_at, body) \
                     VALUES ($1, $2, $3, $4, $5, $5, $6)",
                )
                .bind(id)
                .bind(tenant)
                .bind(operation_id)
                .bind(TicketStatus::Open.as_str())
                .bind(now)
                .bind(body)
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
        for o in &self.outbox {
            sqlx::query(
                "INSERT INTO outbox (tenant, stream, url, event_id, payload, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(&o.tenant)
            .bind(&o.stream)
            .bind(&o.url)
            .bind(o.event_id.as_deref())
            .bind(&o.payload)
            .bind(o.now)
            .execute(&mut **tx)
            .await?;
        }
        for a in &self.audit {
            a.write(tx).await?;
        }
        Ok(true)
    }
}
