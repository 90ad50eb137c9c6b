//! The desk's sessions: its cookies (plain, or `__Host-` with `[desk] secure_cookies`), the
//! login form and its token, logging in with a desk user's key (audited, failed or not), the
//! session a cookie names (ended by idle time or a key change), CSRF tokens, logging out.

use super::pages::{self, page, redirect};
use super::users::DeskUser;
use crate::problem::ApiError;
use crate::server::Client;
use crate::AppState;
use axum::extract::{Form, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use certgate_core::TenantId;
use certgate_store::ms;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How long a session lasts at most (idle or not).
pub(super) const SESSION_HOURS: i64 = 12;
/// How long a login form stays valid.
pub(super) const LOGIN_FORM_SECONDS: i64 = 3_600;

/// The desk's cookies: plain names on `/desk`, or with `[desk] secure_cookies` the
/// `__Host-` names (Secure, `Path=/`, no Domain) whatever the proxy says.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cookies {
    pub(super) secure: bool,
    /// `__Host-` names, `Path=/`.
    pub(super) host: bool,
}

impl Cookies {
    pub(super) fn of(state: &AppState, headers: &HeaderMap) -> Cookies {
        let host = state.desk.secure_cookies;
        let forwarded = headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
        Cookies {
            secure: host || forwarded,
            host,
        }
    }

    pub(super) fn session(self) -> &'static str {
        if self.host {
            "__Host-certgate_desk"
        } else {
            "certgate_desk"
        }
    }

    pub(super) fn login(self) -> &'static str {
        if self.host {
            "__Host-certgate_desk_login"
        } else {
            "certgate_desk_login"
        }
    }

    /// A `Set-Cookie` line for `name` (`value`, for `max_age` seconds; 0 ends it).
    pub(super) fn line(self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        let path = if self.host { "/" } else { "/desk" };
        let secure = if self.secure { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
        ))
        .expect("a cookie of hex digits")
    }
}

pub(super) fn digest(cookie: &str) -> String {
    hex::encode(Sha256::digest(cookie.as_bytes()))
}

/// The request's cookie `name`, if any.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
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
pub(super) struct Session {
    pub(super) user: DeskUser,
    pub(super) csrf: String,
    pub(super) digest: String,
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
pub(super) async fn session(state: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
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
pub(super) fn csrf_ok(session: &Session, presented: &str) -> bool {
    bool::from(session.csrf.as_bytes().ct_eq(presented.as_bytes()))
}

pub(super) fn forbidden() -> Response {
    page(
        StatusCode::FORBIDDEN,
        pages::message(
            "Form expired",
            "This form is no longer valid: reload the page and try again.",
        ),
    )
}

pub(super) async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    login_form(&state, &headers, StatusCode::OK, None)
}

/// The login page with a fresh form token, set in a cookie as well: a login is accepted only
/// from a form the desk gave out (no login forged from another site).
pub(super) fn login_form(
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
pub(super) struct LoginForm {
    pub(super) key: String,
    #[serde(default)]
    pub(super) csrf: String,
}

pub(super) async fn login(
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
pub(super) async fn audit_login(
    state: &AppState,
    tenant: &TenantId,
    actor: &str,
    outcome: &str,
    from: &str,
) {
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
pub(super) struct TokenForm {
    #[serde(default)]
    pub(super) csrf: String,
}

pub(super) async fn logout(
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
