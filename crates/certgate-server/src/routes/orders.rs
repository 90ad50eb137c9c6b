//! Watched orders: `PUT /v1/orders/{id}` (keep an order and watch its refund window),
//! `GET /v1/orders/{id}`, `DELETE /v1/orders/{id}` and `GET /v1/orders` (soonest `submit_by`
//! first). The watch itself runs in [`certgate_engine::watch`].

use super::query::{self, Id, QueryParams};
use crate::body::JsonBody;
use crate::problem::{ApiError, Problem};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use certgate_core::quote::Intent;
use certgate_core::registry::unknown_provider;
use certgate_core::sweep::SweepItem;
use certgate_core::InvalidInput;
use certgate_core::TenantId;
use certgate_engine::watch::{Watched, WatchedOrder};
use certgate_store::ms;
use certgate_store::{Put, WatchedFilter, WatchedRow, WatchedWrite};
use chrono::Duration;
use serde::{Deserialize, Serialize};

/// The most days `closing_within_days` may look ahead (ten years).
const MAX_DAYS: u32 = 3_650;

/// Keeps the order and watches its refund window: it is quoted for a refund now and again on
/// the watch's schedule. The path's id is the order's `id`.
#[utoipa::path(put, path = "/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "The order's id (`order.id`)")),
    request_body = SweepItem,
    responses(
        (status = 201, description = "Watched from now on", body = WatchedOrder),
        (status = 200, description = "Its facts updated", body = WatchedOrder),
        (status = 404, description = "No such provider", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The CA order belongs to another tenant of a shared CA account (`order_owned_elsewhere`)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    Id(id): Id,
    JsonBody(req): JsonBody<SweepItem>,
) -> Result<Response, ApiError> {
    if req.order.id != id {
        return Err(
            InvalidInput::one("order.id", format!("must be the id in the path (`{id}`)")).into(),
        );
    }
    let live = state.live();
    let entry = live.registry.get(&req.provider).ok_or_else(|| {
        ApiError::UnknownProvider(unknown_provider(&live.registry, &req.provider))
    })?;
    let now = (state.clock)();
    // Validates the order against its provider (a 400 naming the field); the answer shows it.
    let quote = entry.quote(&req.order, Intent::Refund, now)?;
    let body = serde_json::to_string(&req.order).expect("an order serializes");
    // Watching binds the CA order to the tenant (in a shared CA account), and lets go of the
    // one the watch was about before if only the watch held it.
    let claimed = live.shared_order(&tenant, &req.provider, &req.order);
    let before = match state.store.get_watched(&tenant, &id).await? {
        Some(row) => Watched::read(&row)
            .ok()
            .and_then(|w| live.shared_order(&tenant, &w.provider, &w.order)),
        None => None,
    };
    let claim = claimed.as_ref().map(|o| certgate_store::Claim {
        order: o.as_ref(),
        tenant: &tenant,
        provider: &req.provider,
        sticky: false,
        now: ms(now),
    });
    let mut kept = None;
    let mut unreadable = None;
    let put = state
        .store
        .put_watched(
            &tenant,
            &id,
            claim.as_ref(),
            before.as_ref().map(|o| o.as_ref()),
            |old| {
                let mut fx = certgate_store::Effects::default();
                let old = old.map(Watched::read).transpose().unwrap_or_else(|e| {
                    unreadable = Some(e);
                    None
                });
                let w = Watched {
                    provider: req.provider.clone(),
                    order: req.order.clone(),
                    window: old.as_ref().map(|o| o.window.clone()).unwrap_or_default(),
                    operation_id: old.as_ref().and_then(|o| o.operation_id.clone()),
                    operation_status: old.as_ref().and_then(|o| o.operation_status),
                    next_check_at: now,
                    created_at: old.as_ref().map_or(now, |o| o.created_at),
                    updated_at: now,
                };
                let check = certgate_engine::watch::check(&state, &live, &tenant, &w, now, &mut fx);
                kept = Some((w, check.clone()));
                let write = WatchedWrite {
                    tenant: tenant.clone(),
                    id: id.clone(),
                    provider: req.provider.clone(),
                    body,
                    check,
                    now: ms(now),
                };
                (write, fx)
            },
        )
        .await?;
    let status = match put {
        Put::Created => StatusCode::CREATED,
        Put::Updated => StatusCode::OK,
        Put::OwnedElsewhere => return Err(ApiError::OrderOwnedElsewhere),
    };
    if let Some(e) = unreadable {
        tracing::warn!(error = %e, order = %id, "a watched order was unreadable: replaced");
    }
    let (mut w, check) = kept.expect("the write decided");
    w.window = serde_json::from_str(&check.window_state).unwrap_or_default();
    w.next_check_at = chrono::DateTime::from_timestamp_millis(check.next_check_at).unwrap_or(now);
    let answer = WatchedOrder::new(&w, Some(quote), w.window.clone());
    Ok((status, Json(answer)).into_response())
}

async fn load(state: &AppState, tenant: &TenantId, id: &str) -> Result<WatchedRow, ApiError> {
    state
        .store
        .get_watched(tenant, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no watched order `{id}`")))
}

/// A watched order, its refund quote as of now, and its window.
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "The order's id")),
    responses((status = 200, description = "The watched order", body = WatchedOrder)))]
pub async fn get(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    Id(id): Id,
) -> Result<Json<WatchedOrder>, ApiError> {
    let row = load(&state, &tenant, &id).await?;
    let w = Watched::read(&row)?;
    Ok(Json(WatchedOrder::at(&state.live(), &w, (state.clock)())))
}

/// Stops watching an order.
#[utoipa::path(delete, path = "/v1/orders/{id}", tag = "orders",
    params(("id" = String, Path, description = "The order's id")),
    responses((status = 204, description = "No longer watched")))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    Id(id): Id,
) -> Result<StatusCode, ApiError> {
    // The CA order is let go of if only this watch held it (an operation's binding stays).
    let live = state.live();
    let release = match state.store.get_watched(&tenant, &id).await? {
        Some(row) => Watched::read(&row)
            .ok()
            .and_then(|w| live.shared_order(&tenant, &w.provider, &w.order)),
        None => None,
    };
    if state
        .store
        .delete_watched(&tenant, &id, release.as_ref().map(|o| o.as_ref()))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no watched order `{id}`")))
    }
}

/// The parameters of `GET /v1/orders`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only orders whose refund window is open and whose `submit_by` falls within this many
    /// days from now.
    #[param(schema_with = days_schema)]
    #[serde(default, with = "crate::body::whole_number::option")]
    closing_within_days: Option<u32>,
    /// Only this provider's orders.
    provider: Option<String>,
    #[param(schema_with = cursor_schema)]
    cursor: Option<String>,
    #[param(schema_with = query::limit_schema)]
    #[serde(default, with = "crate::body::whole_number::option")]
    limit: Option<u32>,
}

fn days_schema() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .minimum(Some(0))
        .maximum(Some(MAX_DAYS))
}

/// A list cursor: the last order's sort key (16 hex digits) and its id (hex).
const CURSOR_PATTERN: &str = "^[0-7][0-9a-f]{15}(?:[0-9a-f]{2})+$";

fn cursor_schema() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(CURSOR_PATTERN))
        .description(Some("`next_cursor` of the page before"))
}

fn encode_cursor(row: &WatchedRow) -> String {
    format!("{:016x}{}", row.submit_key, hex::encode(&row.id))
}

/// A cursor's position. Any well-formed one is a position in the list (an id that is not
/// UTF-8 is read as well as it can be): only the shape is checked.
fn decode_cursor(c: &str) -> Option<(i64, String)> {
    if !c.is_ascii() || c.len() < 18 || c.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let (key, id) = c.split_at(16);
    let key = i64::from_str_radix(key, 16).ok()?;
    let id = String::from_utf8_lossy(&hex::decode(id).ok()?).into_owned();
    Some((key, id))
}

/// A page of watched orders, soonest `submit_by` first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderList {
    orders: Vec<WatchedOrder>,
    /// The `cursor` of the next page; null on the last.
    next_cursor: Option<String>,
}

/// The tenant's watched orders, soonest `submit_by` first (orders without a refund window
/// last), each with its refund quote as of now.
#[utoipa::path(get, path = "/v1/orders", tag = "orders", params(ListParams),
    responses((status = 200, description = "A page of watched orders", body = OrderList)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(tenant): Extension<TenantId>,
    QueryParams(params): QueryParams<ListParams>,
) -> Result<Json<OrderList>, ApiError> {
    let limit = query::limit(params.limit)?;
    if params.closing_within_days.is_some_and(|d| d > MAX_DAYS) {
        return Err(InvalidInput::one(
            "closing_within_days",
            format!("must be a whole number from 0 to {MAX_DAYS}"),
        )
        .into());
    }
    let after = query::cursor("cursor", params.cursor.as_deref(), decode_cursor)?;
    let now = (state.clock)();
    let filter = WatchedFilter {
        open_at: params.closing_within_days.map(|_| ms(now)),
        submit_by_until: params
            .closing_within_days
            .map(|d| ms(now + Duration::days(i64::from(d)))),
        provider: params.provider.as_deref().filter(|p| !p.is_empty()),
        after: after.as_ref().map(|(k, id)| (*k, id.as_str())),
        limit,
    };
    let rows = state.store.list_watched(&tenant, &filter).await?;
    let next_cursor = query::next_cursor(&rows, limit, encode_cursor);
    let live = state.live();
    let orders = rows
        .iter()
        .map(|r| Ok(WatchedOrder::at(&live, &Watched::read(r)?, now)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(OrderList {
        orders,
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_agree_with_their_pattern() {
        let pattern = regex::Regex::new(CURSOR_PATTERN).unwrap();
        let row = WatchedRow {
            tenant: "t".into(),
            id: "ord-1001 é".into(),
            provider: "p".into(),
            body: String::new(),
            window_state: String::new(),
            submit_key: certgate_store::NO_WINDOW,
            operation_id: None,
            operation_status: None,
            next_check_at: 0,
            created_at: 0,
            updated_at: 0,
        };
        let c = encode_cursor(&row);
        assert!(pattern.is_match(&c), "{c}");
        assert_eq!(decode_cursor(&c), Some((row.submit_key, row.id.clone())));
        assert!(pattern.is_match("0000000000000000ff"));
        assert_eq!(
            decode_cursor("0000000000000000ff"),
            Some((0, "\u{fffd}".into()))
        );
        for bad in [
            "",
            "00",
            "0000000000000000",
            "000000000000000Z41",
            "ffffffffffffffff41",
            "00000000000000AA41",
            "000000000000000041f",
        ] {
            assert!(decode_cursor(bad).is_none(), "{bad}");
        }
    }
}
