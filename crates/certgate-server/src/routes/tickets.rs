//! `GET /v1/tickets` and `POST /v1/tickets/{id}/resolve`, which moves the waiting step and
//! its operation on.

use super::query::{next_cursor, Params};
use crate::auth::Tenant;
use crate::body::JsonBody;
use crate::problem::ApiError;
use crate::service;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use certgate_core::lifecycle::{Event, TicketOutcome};
use certgate_core::ticket::{Ticket, TicketStatus};
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
        .list_tickets(&tenant.id, status, params.id_cursor("tk")?, limit)
        .await?;
    let next = next_cursor(&rows, limit, |r| r.id.clone());
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
    certgate_core::validation::note("note", req.note.as_deref())?;
    let load = |state: &AppState| {
        let (tenant, id) = (tenant.id.clone(), id.clone());
        let store = state.store.clone();
        async move {
            let row = store
                .get_ticket(&tenant, &id)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no ticket `{id}`")))?;
            serde_json::from_str::<Ticket>(&row.body).map_err(internal)
        }
    };
    let ticket = load(&state).await?;
    if ticket.status != TicketStatus::Open {
        return Err(ApiError::Conflict {
            message: format!("the ticket is already {}", ticket.status.as_str()),
            quote: None,
        });
    }
    let outcome = match req.outcome {
        Outcome::Done => TicketOutcome::Done,
        Outcome::Rejected => TicketOutcome::Rejected,
    };
    let op = service::change(&state, &tenant.id, &ticket.operation_id, |_| {
        Event::TicketResolved {
            ticket_id: id.clone(),
            step: ticket.step,
            outcome,
            note: req.note.clone(),
        }
    })
    .await?;
    let ticket = load(&state).await?;
    Ok(Json(json!({"ticket": ticket, "operation": op})))
}
