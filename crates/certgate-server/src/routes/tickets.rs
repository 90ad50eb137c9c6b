//! `GET /v1/tickets` and `POST /v1/tickets/{id}/resolve`, which moves the waiting step and
//! its operation on (a refund ticket's resolution may say what was credited).

use super::query::{self, next_cursor, Id, QueryParams};
use crate::body::JsonBody;
use crate::problem::{ApiError, Problem};
use crate::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use certgate_core::lifecycle::TicketOutcome;
use certgate_core::money::{Amount, Money};
use certgate_core::operation::Operation;
use certgate_core::ticket::{Ticket, TicketStatus};
use certgate_core::Currency;
use certgate_core::TenantId;
use certgate_engine::service;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// The parameters of `GET /v1/tickets`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only tickets with this status.
    status: Option<TicketStatus>,
    #[param(schema_with = tk_cursor)]
    cursor: Option<String>,
    #[param(schema_with = query::limit_schema)]
    #[serde(default, with = "crate::body::whole_number::option")]
    limit: Option<u32>,
}

fn tk_cursor() -> utoipa::openapi::schema::ObjectBuilder {
    crate::ids::cursor_schema("tk")
}

/// A page of tickets, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TicketList {
    #[schema(value_type = Vec<Ticket>)]
    tickets: Vec<Value>,
    /// The `cursor` of the next page; null on the last.
    next_cursor: Option<String>,
}

/// The tenant's manual tickets, newest first.
#[utoipa::path(get, path = "/v1/tickets", tag = "tickets", params(ListParams),
    responses((status = 200, description = "A page of tickets", body = TicketList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<TicketList>, ApiError> {
    let limit = query::limit(params.limit)?;
    let cursor = query::id_cursor("cursor", params.cursor.as_deref(), "tk")?;
    let rows = state
        .store
        .list_tickets(&tenant, params.status, cursor, limit)
        .await?;
    let next_cursor = next_cursor(&rows, limit, |r| r.id.clone());
    let tickets = rows
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).map_err(internal))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(TicketList {
        tickets,
        next_cursor,
    }))
}

/// How the person who did a manual step saw it end.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Done,
    Rejected,
}

/// The body of `POST /v1/tickets/{id}/resolve`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    pub outcome: Outcome,
    #[serde(default)]
    #[schema(schema_with = certgate_core::validation::note_schema)]
    pub note: Option<String>,
    /// For a refund ticket resolved `done`: the money that arrived (the refund ledger records
    /// it as credited).
    #[serde(default)]
    #[schema(schema_with = credited_schema)]
    pub credited: Option<Credited>,
}

/// What a refund ticket's resolution says was credited.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credited {
    pub amount: Amount,
    pub currency: Currency,
    #[serde(default)]
    pub reference: Option<String>,
}

/// `credited`: null, or money (each currency with its decimals) with the CA's reference.
fn credited_schema() -> OneOfBuilder {
    let mut one_of = OneOfBuilder::new().item(ObjectBuilder::new().schema_type(Type::Null));
    for money in Money::shapes() {
        one_of = one_of.item(
            money
                .property("reference", super::refunds::reference_schema())
                .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false))),
        );
    }
    one_of
}

/// A resolved ticket and its operation, moved on.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Resolution {
    ticket: Ticket,
    operation: Operation,
}

/// Records how an open ticket ended; its step and operation move on.
#[utoipa::path(post, path = "/v1/tickets/{id}/resolve", tag = "tickets",
    params(("id" = String, Path, description = "The ticket's id")),
    request_body = Resolve,
    responses(
        (status = 200, description = "The ticket and its operation", body = Resolution),
        (status = 409, description = "The ticket is not open", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn resolve(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    Id(id): Id,
    JsonBody(req): JsonBody<Resolve>,
) -> Result<Json<Resolution>, ApiError> {
    certgate_core::validation::note("note", req.note.as_deref())?;
    let outcome = match req.outcome {
        Outcome::Done => TicketOutcome::Done,
        Outcome::Rejected => TicketOutcome::Rejected,
    };
    let credited = match req.credited {
        None => None,
        Some(c) => Some(certgate_core::ledger::Credit::checked(
            "credited",
            Money::new(c.amount, c.currency),
            c.reference,
            None,
            (state.clock)(),
        )?),
    };
    let (ticket, operation) = service::resolve_ticket(
        &state,
        service::Actor::Api { tenant: &tenant },
        &tenant,
        &id,
        outcome,
        req.note,
        credited,
    )
    .await?;
    Ok(Json(Resolution { ticket, operation }))
}
