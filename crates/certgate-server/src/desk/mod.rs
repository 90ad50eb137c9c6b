//! The support desk (`/desk`): server-rendered pages over the manual tickets for the people who
//! work them. Desk users are configured like tenants (`[[desk_users]]`: a name, the tenants
//! they serve, a key from the environment) and log in with their key, from a login form whose
//! token must come back; a session is a random cookie (HttpOnly, SameSite=Strict, Secure behind
//! TLS, `__Host-` with `[desk] secure_cookies`) whose digest is stored with a form token that
//! every POST must carry, and which ends after `idle_minutes` or when the user's key changes.
//! Every answer carries a Content-Security-Policy by hash. A desk user sees and resolves only
//! their tenants' tickets (another's is a 404) and can do nothing else: the API's keys are not
//! theirs. `users.rs` holds the desk's users, `session.rs` logging in and sessions, `pages.rs`
//! the HTML; this file the routes over the queue and the tickets.

mod pages;
mod session;
mod users;

use pages::{page, redirect, Item};
use session::*;
pub use users::{DeskUser, DeskUsers};

use crate::problem::ApiError;
use crate::AppState;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use certgate_core::lifecycle::TicketOutcome;
use certgate_core::money::{Amount, Money};
use certgate_core::ticket::{Ticket, TicketStatus};
use certgate_core::Currency;
use certgate_core::TenantId;
use certgate_engine::service::{self, Actor};
use certgate_engine::EngineError;
use serde::Deserialize;

/// The desk's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/desk", get(queue))
        .route("/desk/login", get(login_page).post(login))
        .route("/desk/logout", post(logout))
        .route("/desk/tickets/{id}", get(ticket))
        .route("/desk/tickets/{id}/resolve", post(resolve))
}

/// Every answer under `/desk` (pages, redirects, errors, the 404 of a path the desk does not
/// have): a Content-Security-Policy that allows only the desk's own style and script (by
/// hash), and HSTS when the desk is served over HTTPS.
pub(crate) async fn guard_headers(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path();
    if path != "/desk" && !path.starts_with("/desk/") {
        return next.run(req).await;
    }
    let cookies = Cookies::of(&state, req.headers());
    let mut r = next.run(req).await;
    let headers = r.headers_mut();
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(pages::content_security_policy()),
    );
    if cookies.secure {
        headers.insert(
            "strict-transport-security",
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    r
}

/// The queue's filters, read leniently (a person edits these links): the first of a repeated
/// parameter counts, an unknown one is ignored.
#[derive(Debug, Default)]
struct QueueFilter {
    provider: Option<String>,
    status: Option<String>,
    /// The page, from 1 ([`QUEUE_PAGE`] tickets each).
    page: Option<String>,
}

impl QueueFilter {
    fn read(query: Option<&str>) -> QueueFilter {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
        let first = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        QueueFilter {
            provider: first("provider"),
            status: first("status"),
            page: first("page"),
        }
    }
}

/// Loads ticket `id` of `tenant` with its operation.
async fn item(state: &AppState, tenant: &TenantId, ticket: Ticket) -> Result<Item, ApiError> {
    let row = state
        .store
        .get_operation(tenant, &ticket.operation_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no operation `{}`", ticket.operation_id)))?;
    Ok(Item {
        tenant: tenant.to_owned(),
        ticket,
        operation: service::parse(&row.body)?,
    })
}

/// Tickets per page of the queue.
pub(crate) const QUEUE_PAGE: i64 = 50;

async fn queue(State(state): State<AppState>, s: Session, RawQuery(query): RawQuery) -> Response {
    let filter = QueueFilter::read(query.as_deref());
    let status = match filter.status.as_deref().unwrap_or("open") {
        "" | "any" => None,
        other => match other.parse::<TicketStatus>() {
            Ok(st) => Some(st),
            Err(_) => Some(TicketStatus::Open),
        },
    };
    let provider = filter.provider.clone().filter(|p| !p.is_empty());
    let page_no = filter
        .page
        .as_deref()
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| (1..=1_000_000).contains(p))
        .unwrap_or(1);
    let wanted = certgate_store::QueueFilter {
        status,
        provider: provider.as_deref(),
    };
    let (total, rows) = match state
        .store
        .desk_queue(
            &s.user.tenants,
            wanted,
            (page_no - 1) * QUEUE_PAGE,
            QUEUE_PAGE,
        )
        .await
    {
        Ok(found) => found,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let Ok(ticket) = serde_json::from_str::<Ticket>(&row.body) else {
            continue;
        };
        match item(&state, &row.tenant, ticket).await {
            Ok(i) => items.push(i),
            Err(e) => return e.into_response(),
        }
    }
    let providers: Vec<String> = state.live().registry.names().map(str::to_owned).collect();
    page(
        StatusCode::OK,
        pages::queue(&pages::QueuePage {
            user: &s.user,
            csrf: &s.csrf,
            items: &items,
            total,
            first: (page_no - 1) * QUEUE_PAGE + 1,
            page: page_no,
            providers: &providers,
            provider: provider.as_deref(),
            status,
            now: (state.clock)(),
        }),
    )
}

/// Ticket `id` if it belongs to one of the user's tenants.
async fn find(state: &AppState, user: &DeskUser, id: &str) -> Result<Option<Item>, ApiError> {
    for tenant in &user.tenants {
        if let Some(row) = state.store.get_ticket(tenant, id).await? {
            let ticket: Ticket = serde_json::from_str(&row.body)
                .map_err(|e| ApiError::Internal(format!("stored ticket unreadable: {e}")))?;
            return Ok(Some(item(state, tenant, ticket).await?));
        }
    }
    Ok(None)
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        pages::message("No such ticket", "There is no such ticket in your queue."),
    )
}

async fn ticket(State(state): State<AppState>, s: Session, Path(id): Path<String>) -> Response {
    match find(&state, &s.user, &id).await {
        Ok(Some(item)) => page(
            StatusCode::OK,
            pages::ticket(&s.user, &s.csrf, &item, None, (state.clock)()),
        ),
        Ok(None) => not_found(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct ResolveForm {
    #[serde(default)]
    csrf: String,
    outcome: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    credited_amount: String,
    #[serde(default)]
    credited_currency: String,
    #[serde(default)]
    credited_reference: String,
}

/// A resolution as the form asks it, checked.
struct Asked {
    outcome: TicketOutcome,
    note: Option<String>,
    credited: Option<certgate_core::ledger::Credit>,
}

/// Reads the form: the outcome, the note and what was credited (its currency the quote's when
/// left empty; whether this resolution may carry one is the service's rule). What is wrong, in
/// a sentence, otherwise.
fn read_form(
    form: &ResolveForm,
    item: &Item,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Asked, String> {
    let outcome = match form.outcome.as_str() {
        "done" => TicketOutcome::Done,
        "rejected" => TicketOutcome::Rejected,
        _ => return Err("Choose Done or Rejected.".into()),
    };
    let note = Some(form.note.trim().to_owned()).filter(|n| !n.is_empty());
    certgate_core::validation::note("note", note.as_deref()).map_err(|e| e.to_string())?;
    let amount = form.credited_amount.trim();
    if amount.is_empty() {
        return Ok(Asked {
            outcome,
            note,
            credited: None,
        });
    }
    let amount: Amount = amount
        .parse()
        .map_err(|e: String| format!("Credited amount: {e}"))?;
    let currency = match form.credited_currency.trim() {
        "" => item.operation.quote().decision.refund.currency,
        code => code
            .parse::<Currency>()
            .map_err(|e| format!("Currency: {e}"))?,
    };
    let reference = Some(form.credited_reference.trim().to_owned()).filter(|r| !r.is_empty());
    let credited = certgate_core::ledger::Credit::checked(
        "credited",
        Money::new(amount, currency),
        reference,
        None,
        now,
    )
    .map_err(|e| e.to_string())?;
    Ok(Asked {
        outcome,
        note,
        credited: Some(credited),
    })
}

async fn resolve(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    Form(form): Form<ResolveForm>,
) -> Response {
    if !csrf_ok(&s, &form.csrf) {
        return forbidden();
    }
    let item = match find(&state, &s.user, &id).await {
        Ok(Some(item)) => item,
        Ok(None) => return not_found(),
        Err(e) => return e.into_response(),
    };
    let now = (state.clock)();
    let problem = |message: String| {
        page(
            StatusCode::BAD_REQUEST,
            pages::ticket(&s.user, &s.csrf, &item, Some(&message), now),
        )
    };
    let asked = match read_form(&form, &item, now) {
        Ok(asked) => asked,
        Err(message) => return problem(message),
    };
    let actor = Actor::Desk {
        tenant: &item.tenant,
        user: &s.user.name,
    };
    let resolved = service::resolve_ticket(
        &state,
        actor,
        &item.tenant,
        &id,
        asked.outcome,
        asked.note,
        asked.credited,
    )
    .await;
    match resolved {
        Ok(_) => redirect(&format!("/desk/tickets/{id}")),
        Err(EngineError::Conflict(message)) => problem(message),
        Err(EngineError::Invalid(e)) => problem(e.to_string()),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DeskUserConfig;
    use certgate_core::config::SecretRef;

    fn user(name: &str, tenants: &[&str], var: &str) -> DeskUserConfig {
        DeskUserConfig {
            name: name.into(),
            tenants: tenants.iter().map(|t| (*t).to_owned()).collect(),
            key: SecretRef::parse(&format!("${{{var}}}")).unwrap(),
        }
    }

    #[test]
    fn desk_users_are_checked_all_at_once_and_keys_never_print() {
        std::env::set_var("CERTGATE_UNIT_DESK_KEY", "desk-secret-1");
        let (tenants, _) = crate::tenants::from_config(&[], Some("api-key"), "r").unwrap();
        let users = DeskUsers::from_config(
            &[user("ann", &["default"], "CERTGATE_UNIT_DESK_KEY")],
            &tenants,
        )
        .unwrap();
        assert_eq!(users.by_key("desk-secret-1").unwrap().name, "ann");
        assert!(users.by_key("desk-secret-").is_none());
        assert!(!format!("{users:?}").contains("desk-secret"));
        let err = DeskUsers::from_config(
            &[
                user("ann", &["default"], "CERTGATE_UNIT_DESK_KEY"),
                user("ann", &["nobody"], "CERTGATE_UNIT_DESK_UNSET"),
                user(" ", &[], "CERTGATE_UNIT_DESK_KEY"),
            ],
            &tenants,
        )
        .unwrap_err();
        let keys: Vec<&str> = err.issues.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "desk_users[1].name",
                "desk_users[1].tenants",
                "desk_users[1].key",
                "desk_users[2].name",
                "desk_users[2].tenants"
            ]
        );
    }
}
