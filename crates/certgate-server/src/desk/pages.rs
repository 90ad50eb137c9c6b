//! The desk's pages (maud): semantic HTML that works without script and at 320 px, with one
//! small inline script for the copy buttons and the countdowns. No external fonts, styles or
//! scripts: the gateway may run without internet.

use super::users::DeskUser;
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use certgate_core::order::instant;
use certgate_core::quote::Action;
use certgate_core::ticket::Ticket;
use certgate_core::ticket::TicketStatus;
use certgate_core::TenantId;
use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// A ticket with its operation, as the pages show it.
pub(super) struct Item {
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

/// A page answer: never cached, never framed (no clickjacking), no referrer sent on.
pub(super) fn page(status: StatusCode, body: String) -> Response {
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

pub(super) fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to.to_owned())]).into_response()
}

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0;line-height:1.45;color:#1b1b1b;background:#fafafa}
header,main{max-width:60rem;margin:0 auto;padding:.75rem 1rem}
header{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;justify-content:space-between;border-bottom:1px solid #ccc}
a{color:#0645ad}
ol.queue{list-style:none;padding:0}
ol.queue>li{background:#fff;border:1px solid #ccc;border-radius:.4rem;padding:.75rem;margin:.5rem 0}
ol.queue>li.soonest{border:2px solid #b00020}
.due{font-weight:600}
.late{color:#b00020}
dl.fields{display:grid;grid-template-columns:minmax(8rem,auto) 1fr;gap:.25rem .75rem}
dl.fields dd{margin:0;word-break:break-all}
button,input,select,textarea{font:inherit}
button{padding:.35rem .8rem}
label{display:block;margin:.4rem 0 .1rem}
input[type=text],input[type=password],textarea,select{width:100%;max-width:30rem;box-sizing:border-box}
fieldset{border:1px solid #ccc;border-radius:.4rem;margin:.75rem 0}
.error{border-left:4px solid #b00020;padding:.25rem .75rem;background:#fff0f0}
:focus-visible{outline:3px solid #ffbf47;outline-offset:2px}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
";

/// Copy buttons and countdowns (the page works without them).
const SCRIPT: &str = r#"
document.querySelectorAll('button[data-copy]').forEach(function (b) {
  b.hidden = false;
  b.addEventListener('click', function () {
    var done = function () { b.textContent = 'Copied'; setTimeout(function () { b.textContent = 'Copy'; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(b.dataset.copy).then(done, done);
    } else {
      var t = document.createElement('textarea'); t.value = b.dataset.copy; document.body.appendChild(t);
      t.select(); try { document.execCommand('copy'); } catch (e) {} t.remove(); done();
    }
    document.getElementById('copied').textContent = b.dataset.copy + ' copied';
  });
});
function left(ms) {
  if (ms <= 0) return 'passed';
  var h = Math.floor(ms / 3600000), d = Math.floor(h / 24);
  return d > 0 ? 'in ' + d + ' d ' + (h % 24) + ' h' : 'in ' + h + ' h ' + Math.floor(ms / 60000) % 60 + ' min';
}
function tick() {
  document.querySelectorAll('time[data-countdown]').forEach(function (t) {
    var ms = Date.parse(t.getAttribute('datetime')) - Date.now();
    t.nextElementSibling.textContent = '(' + left(ms) + ')';
  });
}
tick(); setInterval(tick, 30000);
"#;

/// The desk's Content-Security-Policy: nothing but its own inline style and script, each
/// allowed by its SHA-256 (no `'unsafe-inline'`), forms posted only to the desk itself,
/// never framed.
pub fn content_security_policy() -> &'static str {
    static POLICY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        let hash =
            |text: &str| base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text));
        format!(
            "default-src 'none'; style-src 'sha256-{}'; script-src 'sha256-{}'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            hash(STYLE),
            hash(SCRIPT)
        )
    });
    &POLICY
}

fn layout(title: &str, user: Option<(&DeskUser, &str)>, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · certgate desk" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { a href="/desk" { "certgate desk" } }
                    @if let Some((user, csrf)) = user {
                        form method="post" action="/desk/logout" {
                            span { "Signed in as " strong { (user.name) } " " }
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
                p role="status" aria-live="polite" id="copied" class="visually-hidden" {}
                script { (PreEscaped(SCRIPT)) }
            }
        }
    }
    .into_string()
}

/// A page that says one thing.
pub fn message(title: &str, text: &str) -> String {
    layout(
        title,
        None,
        html! { h1 { (title) } p { (text) } p { a href="/desk" { "Back to the queue" } } },
    )
}

pub fn login(token: &str, error: Option<&str>) -> String {
    layout(
        "Log in",
        None,
        html! {
            h1 { "Log in to the support desk" }
            @if let Some(e) = error { p class="error" role="alert" { (e) } }
            form method="post" action="/desk/login" {
                input type="hidden" name="csrf" value=(token);
                label for="key" { "Your desk key" }
                input type="password" id="key" name="key" autocomplete="current-password" required;
                p { button type="submit" { "Log in" } }
            }
        },
    )
}

/// An instant with its countdown (filled in by the script).
fn due(label: &str, at: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    let text = instant::format(&at);
    html! {
        span class={ "due" @if at <= now { " late" } } {
            (label) " "
            time datetime=(text) data-countdown { (at.format("%Y-%m-%d %H:%M UTC")) }
            " " span {}
        }
    }
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::RejectApproval => "Reject the approval",
        Action::Cancel => "Cancel",
        Action::Revoke => "Revoke",
        Action::RefundRequest => "Refund request",
    }
}

/// What the queue page shows.
pub struct QueuePage<'a> {
    pub user: &'a DeskUser,
    pub csrf: &'a str,
    /// This page's tickets, the soonest due first.
    pub items: &'a [Item],
    /// How many tickets match the filter, on every page.
    pub total: i64,
    /// The position of this page's first ticket (from 1), and the page's number.
    pub first: i64,
    pub page: i64,
    pub providers: &'a [String],
    pub provider: Option<&'a str>,
    pub status: Option<TicketStatus>,
    pub now: DateTime<Utc>,
}

impl QueuePage<'_> {
    /// The queue's address with this page's filters, at page `page`.
    fn link(&self, page: i64) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(p) = self.provider {
            query.append_pair("provider", p);
        }
        query.append_pair("status", self.status.map_or("any", TicketStatus::as_str));
        query.append_pair("page", &page.to_string());
        format!("/desk?{}", query.finish())
    }

    /// What the filter matches and which of them this page shows: "230 open, showing 1–50".
    fn summary(&self) -> String {
        let what = self.status.map_or("tickets", TicketStatus::as_str);
        let last = self.first + self.items.len() as i64 - 1;
        format!(
            "{} {what}, showing {}–{last}, the soonest due first",
            self.total, self.first
        )
    }
}

pub fn queue(p: &QueuePage<'_>) -> String {
    // The soonest due is the first open ticket of the first page.
    let soonest = (p.page == 1)
        .then(|| {
            p.items
                .iter()
                .find(|i| i.ticket.status == TicketStatus::Open && i.by().is_some())
        })
        .flatten()
        .map(|i| i.ticket.id.clone());
    let more = p.first + (p.items.len() as i64) <= p.total;
    let body = html! {
        h1 { "Tickets" }
        form method="get" action="/desk" {
            fieldset {
                legend { "Filter" }
                label for="provider" { "CA" }
                select id="provider" name="provider" {
                    option value="" selected[p.provider.is_none()] { "Every CA" }
                    @for name in p.providers {
                        option value=(name) selected[p.provider == Some(name.as_str())] { (name) }
                    }
                }
                label for="status" { "Status" }
                select id="status" name="status" {
                    @for st in TicketStatus::ALL {
                        option value=(st.as_str()) selected[p.status == Some(st)] { (st.as_str()) }
                    }
                    option value="any" selected[p.status.is_none()] { "any" }
                }
                p { button type="submit" { "Show" } }
            }
        }
        @if p.items.is_empty() {
            p { "No tickets here." }
            @if p.total > 0 { p { a href=(p.link(1)) { "To the first page" } " (" (p.total) " in all)" } }
        } @else {
            p { (p.summary()) }
            ol class="queue" {
                @for i in p.items {
                    li class=[(soonest.as_ref() == Some(&i.ticket.id)).then_some("soonest")] {
                        h2 {
                            a href={ "/desk/tickets/" (i.ticket.id) } {
                                (action_name(i.ticket.action)) " at " (i.ticket.provider)
                                " for order " (i.ticket.order_id)
                            }
                        }
                        @if soonest.as_ref() == Some(&i.ticket.id) { p { strong { "Soonest deadline" } } }
                        p {
                            (i.operation.order().common_name.as_deref().unwrap_or("no common name"))
                            @if let Some(s) = &i.operation.order().supplier_order_id { " · supplier order " (s) }
                            " · " (i.tenant) " · " (i.ticket.status.as_str())
                        }
                        @if let Some(by) = i.by() { p { (due("Send by", by, p.now)) } }
                    }
                }
            }
            @if p.page > 1 || more {
                nav aria-label="Pages" {
                    @if p.page > 1 { a href=(p.link(p.page - 1)) rel="prev" { "← Sooner" } " " }
                    @if more { a href=(p.link(p.page + 1)) rel="next" { "Later →" } }
                }
            }
        }
    };
    layout("Tickets", Some((p.user, p.csrf)), body)
}

pub fn ticket(
    user: &DeskUser,
    csrf: &str,
    item: &Item,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> String {
    let t = &item.ticket;
    let op = &item.operation;
    let order = &op.order();
    let decision = &op.quote().decision;
    let refund = decision.refund;
    let title = format!(
        "{} at {} for order {}",
        action_name(t.action),
        t.provider,
        t.order_id
    );
    let copyable: Vec<(String, String)> = t
        .fields
        .iter()
        .filter_map(|(f, v)| v.clone().map(|v| (f.label().to_owned(), v)))
        .chain(
            order
                .common_name
                .clone()
                .filter(|_| {
                    !t.fields
                        .contains_key(&certgate_core::quote::TicketField::CommonName)
                })
                .map(|v| ("common name".to_owned(), v)),
        )
        .chain(
            order
                .supplier_order_id
                .clone()
                .filter(|_| {
                    !t.fields
                        .contains_key(&certgate_core::quote::TicketField::SupplierOrderId)
                })
                .map(|v| ("supplier order ID".to_owned(), v)),
        )
        .collect();
    let body = html! {
        p { a href="/desk" { "← Back to the queue" } }
        h1 { (title) }
        p { "Ticket " code { (t.id) } " · " (t.status.as_str()) " · tenant " (item.tenant) }
        @if let Some(e) = error { p class="error" role="alert" { (e) } }
        section aria-labelledby="todo" {
            h2 id="todo" { "What to do" }
            ol { @for line in &t.instructions { li { (line) } } }
        }
        section aria-labelledby="facts" {
            h2 id="facts" { "The order" }
            dl class="fields" {
                @for (label, value) in &copyable {
                    dt { (label) }
                    dd {
                        code { (value) } " "
                        button type="button" data-copy=(value) hidden aria-label={ "Copy the " (label) } { "Copy" }
                    }
                }
                @if refund.kind != certgate_core::quote::RefundKind::None
                    && !t.fields.contains_key(&certgate_core::quote::TicketField::Amount) {
                    dt { "amount" }
                    dd { (refund.amount) " " (refund.currency) }
                }
                @if let Some(by) = decision.submit_by { dt { "submit by" } dd { (due("", by, now)) } }
                @if let Some(d) = decision.deadline { dt { "deadline" } dd { (due("", d, now)) } }
            }
        }
        @if t.status == TicketStatus::Open {
            section aria-labelledby="resolve" {
                h2 id="resolve" { "Resolve" }
                form method="post" action={ "/desk/tickets/" (t.id) "/resolve" } {
                    input type="hidden" name="csrf" value=(csrf);
                    fieldset {
                        legend { "How did it end?" }
                        label { input type="radio" name="outcome" value="done" required; " Done" }
                        label { input type="radio" name="outcome" value="rejected"; " Rejected" }
                    }
                    label for="note" { "Note (what they answered, their reference)" }
                    textarea id="note" name="note" rows="3" {}
                    @if op.credited_on(t.step) {
                        fieldset {
                            legend { "Credited (if the money is already in)" }
                            label for="credited_amount" { "Amount" }
                            input type="text" id="credited_amount" name="credited_amount" inputmode="decimal" placeholder=(refund.amount);
                            label for="credited_currency" { "Currency" }
                            input type="text" id="credited_currency" name="credited_currency" value=(refund.currency) maxlength="3";
                            label for="credited_reference" { "Reference" }
                            input type="text" id="credited_reference" name="credited_reference";
                        }
                    }
                    p { button type="submit" { "Resolve" } }
                }
            }
        } @else if let Some(note) = &t.note {
            p { "Resolved: " (note) }
        }
        details {
            summary { "The operation's steps and history" }
            h3 { "Steps" }
            ol { @for s in op.steps() { li { (s.action.as_str()) " — " (s.status.as_str()) } } }
            h3 { "History" }
            ol { @for h in op.history() { li { time datetime=(instant::format(&h.at)) { (h.at.format("%Y-%m-%d %H:%M:%S")) } " " (h.status.as_str()) ": " (h.detail) } } }
        }
    };
    layout(&title, Some((user, csrf)), body)
}
