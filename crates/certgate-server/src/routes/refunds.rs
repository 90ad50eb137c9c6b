//! The refund ledger's routes: `POST /v1/operations/{id}/refund` (what the CA did with the
//! money), `GET /v1/refunds` and `GET /v1/refunds/summary`.

use super::query::{self, next_cursor, Id, QueryParams};
use crate::body::JsonBody;
use crate::problem::{ApiError, Problem};
use crate::AppState;
use axum::extract::State;
use axum::{Extension, Json};
use certgate_core::ledger::{Credit, RefundRecord, RefundStatus, Report};
use certgate_core::lifecycle::Event;
use certgate_core::money::{Amount, Money};
use certgate_core::operation::Operation;
use certgate_core::order::instant;
use certgate_core::validation::Errors;
use certgate_core::Currency;
use certgate_core::InvalidInput;
use certgate_core::TenantId;
use certgate_engine::ledger::ProviderTotals;
use certgate_engine::service;
use certgate_store::RefundFilter;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{
    AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};

/// What the CA did with the money.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reported {
    Approved,
    Credited,
    Denied,
}

/// The body of `POST /v1/operations/{id}/refund`. Read flat (each error names its field);
/// documented as one shape per `status` (see [`report_schema`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundReport {
    pub status: Reported,
    #[serde(default)]
    pub amount: Option<Amount>,
    #[serde(default)]
    pub currency: Option<Currency>,
    #[serde(default)]
    pub reference: Option<String>,
    #[serde(default, with = "instant::option")]
    pub at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub note: Option<String>,
}

/// One shape per `status`: `approved` and `denied` carry a note; `credited` the amount and
/// currency (required; the amount with at most the currency's decimals), the CA's reference
/// and when the money arrived (now when absent; not in the future).
fn report_schema() -> RefOr<Schema> {
    let closed = |o: ObjectBuilder| {
        o.additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
    };
    let shape = |o: ObjectBuilder, status: &str, description: &str| {
        o.description(Some(description))
            .property(
                "status",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([status])),
            )
            .required("status")
            .property("note", certgate_core::validation::note_schema())
    };
    let mut one_of = OneOfBuilder::new()
        .item(closed(shape(
            ObjectBuilder::new(),
            "approved",
            "The CA agreed to refund",
        )))
        .item(closed(shape(
            ObjectBuilder::new(),
            "denied",
            "The CA refused",
        )));
    for money in Money::shapes() {
        one_of = one_of.item(closed(
            shape(money, "credited", "The money arrived")
                .property("reference", reference_schema())
                .property(
                    "at",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
                ),
        ));
    }
    one_of.into()
}

impl utoipa::PartialSchema for RefundReport {
    fn schema() -> RefOr<Schema> {
        report_schema()
    }
}

impl utoipa::ToSchema for RefundReport {}

/// A reference: null, or a line of text with something in it.
pub fn reference_schema() -> ObjectBuilder {
    certgate_core::validation::string_schema(
        certgate_core::validation::id_pattern(),
        certgate_core::ledger::MAX_REFERENCE,
        true,
    )
}

/// Records what the CA did with the refund an operation promises; its record moves on
/// (a credit other than the one expected sets `mismatch`).
#[utoipa::path(post, path = "/v1/operations/{id}/refund", tag = "refunds",
    params(("id" = String, Path, description = "The operation's id")),
    request_body = RefundReport,
    responses(
        (status = 200, description = "The operation with its refund record", body = Operation),
        (status = 409, description = "The operation promises no money, or its refund is already credited or denied", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn report(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    Id(id): Id,
    JsonBody(req): JsonBody<RefundReport>,
) -> Result<Json<Operation>, ApiError> {
    certgate_core::validation::note("note", req.note.as_deref())?;
    let now = (state.clock)();
    let report =
        match (req.status, req.amount, req.currency) {
            (Reported::Credited, Some(amount), Some(currency)) => Report::Credited(
                Credit::checked("", Money::new(amount, currency), req.reference, req.at, now)?,
            ),
            (Reported::Credited, amount, _) => {
                let missing = if amount.is_none() {
                    "amount"
                } else {
                    "currency"
                };
                return Err(InvalidInput::one(missing, "is required for a credited refund").into());
            }
            (other, ..) => {
                let mut errors = Errors::default();
                for (field, given) in [
                    ("amount", req.amount.is_some()),
                    ("currency", req.currency.is_some()),
                    ("reference", req.reference.is_some()),
                    ("at", req.at.is_some()),
                ] {
                    if given {
                        errors.push(field, "only a credited refund carries it");
                    }
                }
                errors.finish()?;
                match other {
                    Reported::Approved => Report::Approved,
                    _ => Report::Denied,
                }
            }
        };
    let note = req.note;
    let op = service::change(&state, &tenant, &id, |_| Event::RefundReported {
        report: report.clone(),
        note: note.clone(),
    })
    .await?;
    Ok(Json(op))
}

/// The parameters of `GET /v1/refunds`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only refunds with this status.
    status: Option<RefundStatus>,
    /// Only this provider's refunds.
    provider: Option<String>,
    /// Only overdue refunds (`true`), or only those not overdue (`false`).
    overdue: Option<bool>,
    /// Only refunds credited with another amount than expected (`true`), or the others.
    mismatch: Option<bool>,
    #[param(schema_with = op_cursor)]
    cursor: Option<String>,
    #[param(schema_with = query::limit_schema)]
    #[serde(default, with = "crate::body::whole_number::option")]
    limit: Option<u32>,
}

fn op_cursor() -> utoipa::openapi::schema::ObjectBuilder {
    crate::ids::cursor_schema("op")
}

/// One refund of the ledger.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    operation_id: String,
    order_id: String,
    provider: String,
    /// The currency the refund is counted in.
    currency: Currency,
    refund: RefundRecord,
}

/// A page of the ledger, newest operation first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefundList {
    refunds: Vec<LedgerEntry>,
    /// The `cursor` of the next page; null on the last.
    next_cursor: Option<String>,
}

/// The tenant's refunds, newest operation first.
#[utoipa::path(get, path = "/v1/refunds", tag = "refunds", params(ListParams),
    responses((status = 200, description = "A page of refunds", body = RefundList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<RefundList>, ApiError> {
    let limit = query::limit(params.limit)?;
    let filter = RefundFilter {
        status: params.status,
        provider: params.provider.as_deref().filter(|p| !p.is_empty()),
        overdue: params.overdue,
        mismatch: params.mismatch,
        before: query::id_cursor("cursor", params.cursor.as_deref(), "op")?,
        limit,
    };
    let rows = state.store.list_refunds(&tenant, &filter).await?;
    let next_cursor = next_cursor(&rows, limit, |r| r.operation_id.clone());
    let refunds = rows
        .iter()
        .map(|r| {
            Ok(LedgerEntry {
                operation_id: r.operation_id.clone(),
                order_id: r.order_id.clone(),
                provider: r.provider.clone(),
                currency: r.currency.parse().map_err(ApiError::Internal)?,
                refund: certgate_engine::ledger::record(r)?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(RefundList {
        refunds,
        next_cursor,
    }))
}

/// The ledger summed by provider and currency.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Summary {
    by_provider: Vec<ProviderTotals>,
}

/// The tenant's ledger summed by provider and currency: what a finance team reconciles
/// against the CA's statements.
#[utoipa::path(get, path = "/v1/refunds/summary", tag = "refunds",
    responses((status = 200, description = "The sums", body = Summary)))]
pub async fn summary(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
) -> Result<Json<Summary>, ApiError> {
    let totals = certgate_engine::ledger::summary(&state.store, &tenant).await?;
    Ok(Json(Summary {
        by_provider: totals.into_iter().map(ProviderTotals::from).collect(),
    }))
}
