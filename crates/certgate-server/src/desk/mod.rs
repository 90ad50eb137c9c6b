//! The support desk (`/desk`): server-rendered pages over the manual tickets for the people who
//! work them. Desk users are configured like tenants (`[[desk_users]]`: a name, the tenants
//! they serve, a key from the environment) and log in with their key, from a login form whose
//! token must come back; a session is a random cookie (HttpOnly, SameSite=Strict, Secure behind
//! TLS, `__Host-` with `[desk] secure_cookies`) whose digest is stored with a form token that
//! every POST must carry, and which ends after `idle_minutes` or when the user's key changes.
//! Every answer carries a Content-Security-Policy by hash. A desk user sees and resolves only
//! their tenants' tickets (another's is a 404) and can do nothing else: the API's keys are not
//! theirs.

mod pages;

use crate::auth::KeyRing;
use crate::config::DeskUserConfig;
use crate::problem::ApiError;
use crate::server::Client;
use crate::AppState;
use axum::extract::{Form, Path, RawQuery, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use certgate_core::config::{ConfigError, ConfigIssue};
use certgate_core::lifecycle::TicketOutcome;
use certgate_core::money::{Amount, Money};
use certgate_core::ticket::{Ticket, TicketStatus};
use certgate_core::Currency;
use certgate_core::TenantId;
use certgate_engine::service::{self, Actor};
use certgate_engine::EngineError;
use certgate_store::ms;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How long a session lasts at most (idle or not).
const SESSION_HOURS: i64 = 12;
/// How long a login form stays valid.
const LOGIN_FORM_SECONDS: i64 = 3_600;

/// The desk's cookies: plain names on `/desk`, or with `[desk] secure_cookies` the
/// `__Host-` names (Secure, `Path=/`, no Domain) whatever the proxy says.
#[derive(Debug, Clone, Copy)]
struct Cookies {
    secure: bool,
    /// `__Host-` names, `Path=/`.
    host: bool,
}

impl Cookies {
    fn of(state: &AppState, headers: &HeaderMap) -> Cookies {
        let host = state.desk.secure_cookies;
        let forwarded = headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        Cookies {
            secure: host || forwarded,
            host,
        }
    }

    fn session(self) -> &'static str {
        if self.host {
            "__Host-certgate_desk"
        } else {
            "certgate_desk"
        }
    }

    fn login(self) -> &'static str {
        if self.host {
            "__Host-certgate_desk_login"
        } else {
            "certgate_desk_login"
        }
    }

    /// A `Set-Cookie` line for `name` (`value`, for `max_age` seconds; 0 ends it).
    fn line(self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        let path = if self.host { "/" } else { "/desk" };
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .expect("a cookie of hex digits")
    }
}

/// A desk user, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskUser {
    pub name: String,
    pub tenants: Vec<TenantId>,
    /// Names the user's key without revealing it: a session begun with another key (the
    /// key rotated since) has ended.
    key_id: String,
}

/// The desk's users and their keys (kept only as digests).
#[derive(Default)]
pub struct DeskUsers(KeyRing<DeskUser>);

impl std::fmt::Debug for DeskUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeskUsers")
            .field(
                "users",
                &self.0.values().map(|u| &u.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl DeskUsers {
    /// Builds the desk users; every tenant they name must exist (`tenants`). Every problem is
    /// reported at once.
    pub fn from_config(
        configs: &[DeskUserConfig],
        tenants: &certgate_engine::tenants::Tenants,
    ) -> Result<DeskUsers, ConfigError> {
        let mut issues = Vec::new();
        let mut out = DeskUsers::default();
        for (i, u) in configs.iter().enumerate() {
            let mut issue = |key: &str, message: String| {
                issues.push(ConfigIssue {
                    key: format!("desk_users[{i}].{key}"),
                    message,
                })
            };
            if u.name.trim().is_empty() {
                issue("name", "must not be empty".into());
            } else if configs[..i].iter().any(|o| o.name == u.name) {
                issue("name", format!("`{}` is used twice", u.name));
            }
            if u.tenants.is_empty() {
                issue("tenants", "must name at least one tenant".into());
            }
            for t in &u.tenants {
                if tenants.get(t.as_str()).is_none() {
                    issue("tenants", format!("no tenant `{t}` is configured"));
                }
            }
            match u.key.resolve() {
                Some(key) => out.0.add(
                    DeskUser {
                        name: u.name.clone(),
                        tenants: u.tenants.iter().map(|t| t.as_str().into()).collect(),
                        key_id: hex::encode(&Sha256::digest(format!("desk-key-id:{key}"))[..8]),
                    },
                    &key,
                ),
                None => issue(
                    "key",
                    format!("${{{}}} is not set in the environment", u.key.var),
                ),
            }
        }
        if issues.is_empty() {
            Ok(out)
        } else {
            Err(ConfigError { issues })
        }
    }

    /// The user whose key this is (compared in constant time).
    fn by_key(&self, presented: &str) -> Option<&DeskUser> {
        self.0.find(presented)
    }

    fn by_name(&self, name: &str) -> Option<&DeskUser> {
        self.0.values().find(|u| u.name == name)
    }
}

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

/// A page answer: never cached, never framed (no clickjacking), no referrer sent on.
fn page(status: StatusCode, body: String) -> Response {
    let mut r = (status, Html(body)).into_response();
    let headers = r.headers_mut();
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_owned())]).into_response()
}

fn digest(cookie: &str) -> String {
    hex::encode(Sha256::digest(cookie.as_bytes()))
}

/// The request's cookie `name`, if any.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.to_owned())
}

/// A logged-in desk user and their session's form token.
struct Session {
    user: DeskUser,
    csrf: String,
    digest: String,
}

/// A handler's session: the request's, or the login page to go to.
impl axum::extract::FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Session, Response> {
        session(state, &parts.headers).await
    }
}

/// The request's session, or the login page to go to.
async fn session(state: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    let Some(cookie) = cookie(headers, Cookies::of(state, headers).session()) else {
        return Err(redirect("/desk/login"));
    };
    let digest = digest(&cookie);
    let now = ms((state.clock)());
    let idle = i64::from(state.desk.idle_minutes) * 60_000;
    let found = state
        .store
        .desk_session(&digest, now, now - idle)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    let access = state.access();
    match found.and_then(|s| access.desk.by_name(&s.desk_user).cloned().map(|u| (u, s))) {
        Some((user, s)) if s.key_id == user.key_id => Ok(Session {
            user,
            csrf: s.csrf,
            digest,
        }),
        Some((user, _)) => {
            // The user's key changed since: the session ends.
            tracing::info!(desk_user = %user.name, "a desk session begun with a rotated key ended");
            let _ = state.store.end_desk_session(&digest).await;
            Err(redirect("/desk/login"))
        }
        None => Err(redirect("/desk/login")),
    }
}

/// Whether `presented` is the session's form token (in constant time).
fn csrf_ok(session: &Session, presented: &str) -> bool {
    bool::from(session.csrf.as_bytes().ct_eq(presented.as_bytes()))
}

fn forbidden() -> Response {
    page(
        StatusCode::FORBIDDEN,
        pages::message(
            "Form expired",
            "This form is no longer valid: reload the page and try again.",
        ),
    )
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    login_form(&state, &headers, StatusCode::OK, None)
}

/// The login page with a fresh form token, set in a cookie as well: a login is accepted only
/// from a form the desk gave out (no login forged from another site).
fn login_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let token = hex::encode(rand::random::<[u8; 16]>());
    let cookies = Cookies::of(state, headers);
    let mut r = page(status, pages::login(&token, error));
    r.headers_mut().append(
        SET_COOKIE,
        cookies.line(cookies.login(), &token, LOGIN_FORM_SECONDS),
    );
    r
}

/// The login form. No `Debug`: it holds a desk key.
#[derive(Deserialize)]
struct LoginForm {
    key: String,
    #[serde(default)]
    csrf: String,
}

async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let cookies = Cookies::of(&state, &headers);
    let token_ok = cookie(&headers, cookies.login()).is_some_and(|t| {
        !form.csrf.is_empty() && bool::from(t.as_bytes().ct_eq(form.csrf.as_bytes()))
    });
    if !token_ok {
        return login_form(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            Some("This login form has expired: enter your key again."),
        );
    }
    let access = state.access();
    let found = crate::auth::guarded(
        &state.guesses.desk,
        state.server.failed_auth_per_minute,
        client,
        "desk",
        || {
            access
                .desk
                .by_key(form.key.trim())
                .ok_or("That key is not a desk user's key.")
        },
    );
    let from = client.map_or("unknown".to_owned(), |ip| ip.to_string());
    let user = match found {
        Ok(user) => user,
        Err(e) => {
            let status = e.status();
            let message = e.to_string();
            if status == StatusCode::UNAUTHORIZED {
                // The gateway's own audit (no tenant: the key named no one).
                audit_login(&state, &TenantId::from(""), "desk:unknown", "failed", &from).await;
            }
            let mut r = login_form(&state, &headers, status, Some(&message));
            if let ApiError::TooManyRequests { retry_after, .. } = &e {
                r.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    crate::problem::retry_after(*retry_after),
                );
            }
            return r;
        }
    };
    for tenant in &user.tenants {
        audit_login(&state, tenant, &format!("desk:{}", user.name), "ok", &from).await;
    }
    let session = hex::encode(rand::random::<[u8; 32]>());
    let csrf = hex::encode(rand::random::<[u8; 16]>());
    let now = (state.clock)();
    let ends = now + chrono::Duration::hours(SESSION_HOURS);
    if let Err(e) = state
        .store
        .start_desk_session(
            &digest(&session),
            &user.name,
            &user.key_id,
            &csrf,
            ms(now),
            ms(ends),
        )
        .await
    {
        return ApiError::from(e).into_response();
    }
    tracing::info!(desk_user = %user.name, client = %from, "desk user logged in");
    let mut r = redirect("/desk");
    let headers = r.headers_mut();
    headers.append(
        SET_COOKIE,
        cookies.line(cookies.session(), &session, SESSION_HOURS * 3_600),
    );
    headers.append(SET_COOKIE, cookies.line(cookies.login(), "", 0));
    r
}

/// Records a desk login (`outcome` ok or failed) from `from` in `tenant`'s audit log; a
/// store that refuses it is logged, the login goes on.
async fn audit_login(state: &AppState, tenant: &TenantId, actor: &str, outcome: &str, from: &str) {
    let entry = certgate_store::AuditEntry {
        tenant: tenant.to_owned(),
        at: ms((state.clock)()),
        actor: actor.to_owned(),
        action: certgate_core::audit::AuditAction::DeskLogin.to_string(),
        target: "desk".to_owned(),
        outcome: outcome.to_owned(),
        detail: format!("from {from}"),
    };
    if let Err(e) = state.store.append_audit(&entry).await {
        tracing::warn!(error = %e, "cannot record a desk login in the audit log");
    }
}

#[derive(Debug, Deserialize)]
struct TokenForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    s: Session,
    Form(form): Form<TokenForm>,
) -> Response {
    if !csrf_ok(&s, &form.csrf) {
        return forbidden();
    }
    if let Err(e) = state.store.end_desk_session(&s.digest).await {
        return ApiError::from(e).into_response();
    }
    let cookies = Cookies::of(&state, &headers);
    let mut r = redirect("/desk/login");
    r.headers_mut()
        .insert(SET_COOKIE, cookies.line(cookies.session(), "", 0));
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

/// A ticket with its operation, as the pages show it.
pub(crate) struct Item {
    pub tenant: TenantId,
    pub ticket: Ticket,
    pub operation: certgate_core::operation::Operation,
}

impl Item {
    /// The date the request must go by.
    pub fn by(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.operation.quote().decision.send_by()
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
