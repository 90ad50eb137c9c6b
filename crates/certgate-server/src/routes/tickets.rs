//! `GET /v1/tickets` and `POST /v1/tickets/{id}/resolve`, which moves the waiting step and
//! its operation on.

use super::query::Params;
use crate::auth::Tenant;
use crate::body::JsonBody;
use crate::ops::{audit, ms, save_by_api, webhook};
use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use certgate_core::operation::{Operation, Status};
use certgate_core::ticket::{Ticket, TicketStatus};
use certgate_store::{Effects, TicketWrite};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

pub async fn list(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let params = Params::new(raw, &["status", "cursor", "limit"])?;
    let status = params.parsed::<TicketStatus>("status")?;
    let limit = params.limit()?;
    let rows = state
        .store
        .list_tickets(&tenant.id, status, params.get("cursor"), limit)
        .await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    let tickets = rows
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).map_err(internal))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({"tickets": tickets, "next_cursor": next})))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Done,
    Rejected,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    pub outcome: Outcome,
    #[serde(default)]
    pub note: Option<String>,
}

pub async fn resolve(
    State(state): State<AppState>,
    Extension(tenant): Extension<Tenant>,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Resolve>,
) -> Result<Json<Value>, ApiError> {
    for _ in 0..5 {
        let row = state
            .store
            .get_ticket(&tenant.id, &id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no ticket `{id}`")))?;
        let mut ticket: Ticket = serde_json::from_str(&row.body).map_err(internal)?;
        if ticket.status != TicketStatus::Open {
            return Err(ApiError::Conflict {
                message: format!("the ticket is already {}", ticket.status.as_str()),
                quote: None,
            });
        }
        let op_row = state
            .store
            .get_operation(&tenant.id, &ticket.operation_id)
            .await?
            .ok_or_else(|| internal("a ticket's operation is missing"))?;
        let mut op: Operation = serde_json::from_str(&op_row.body).map_err(internal)?;
        let i = ticket.step;
        if op
            .steps
            .get(i)
            .is_none_or(|s| s.status != Status::ManualTicketOpen)
        {
            return Err(ApiError::Conflict {
                message: format!(
                    "the operation is {}: its step no longer waits for this ticket",
                    op.status
                ),
                quote: None,
            });
        }
        let now = (state.clock)();
        let note = req.note.clone().unwrap_or_default();
        let (step_status, ticket_status) = match req.outcome {
            Outcome::Done => (Status::Completed, TicketStatus::Done),
            Outcome::Rejected => (Status::Rejected, TicketStatus::Rejected),
        };
        let detail = format!(
            "ticket {id} resolved: {}{}",
            ticket_status.as_str(),
            if note.is_empty() {
                String::new()
            } else {
                format!(" ({note})")
            }
        );
        let changed = op.set_step(i, step_status, detail, now);
        ticket.status = ticket_status;
        ticket.note = req.note.clone();
        ticket.updated_at = now;
        let more = op.current_step().is_some() && !op.status.is_terminal();
        let fx = Effects {
            tickets: vec![TicketWrite::Update {
                id: id.clone(),
                from: TicketStatus::Open,
                to: ticket_status,
                now: ms(now),
                body: serde_json::to_string(&ticket).map_err(internal)?,
            }],
            outbox: if changed {
                webhook(state.tenants.get(&tenant.id), &op, now)
                    .into_iter()
                    .collect()
            } else {
                Vec::new()
            },
            audit: vec![audit(
                &tenant.id,
                &tenant.id,
                "ticket.resolve",
                &id,
                ticket_status.as_str(),
                note,
                now,
            )],
        };
        if save_by_api(&state, &op, op_row.version, more.then_some(now), &fx).await? {
            state.wake.notify_one();
            return Ok(Json(json!({"ticket": ticket, "operation": op})));
        }
    }
    Err(ApiError::Conflict {
        message: "the ticket changed while it was being resolved; try again".into(),
        quote: None,
    })
}
