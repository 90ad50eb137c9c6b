//! CAs that behave like the real ones, for end-to-end tests: they keep each order's state,
//! apply an action (at once, or a while after receiving it) and then answer late (so a
//! gateway's timeout loses the answer), answer a repeated action with their "already done"
//! error (or a refusal no document lists), throttle past their own limit, and let a
//! read lag behind a change. Each speaks its vendor's wire contract (CONTRACTS.md).

use serde_json::json;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A sliding-window limit the CA enforces: at most `.0` requests in any `.1`.
#[derive(Debug, Clone, Copy)]
pub struct Limit(pub usize, pub Duration);

/// What every simulated CA shares: orders, the actions received, its limit.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Order id -> state name in the CA's own words.
    pub orders: HashMap<String, String>,
    /// Order id -> actions received (the repeats included), by name.
    pub actions: HashMap<String, Vec<String>>,
    /// Order id -> actions that changed the order.
    pub applied: HashMap<String, Vec<String>>,
    /// Order id -> reads that still show the state before the last change.
    pub stale_reads: HashMap<String, (u32, String)>,
    /// Refunds granted.
    pub refunded: HashMap<String, u32>,
    /// Answers of "slow down".
    pub throttled: usize,
    /// When each call the limit let through came.
    pub accepted: Vec<Instant>,
    seen: VecDeque<Instant>,
}

/// Behaviour shared by the simulated CAs.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// How late an action's answer comes (after the action was applied).
    pub action_delay: Duration,
    /// The CA's own rate limit, if it enforces one.
    pub limit: Option<Limit>,
    /// `Retry-After` seconds on a throttled answer.
    pub retry_after: Option<u64>,
    /// Reads after a change that still show the old state.
    pub read_lag: u32,
    /// How long after receiving an action the CA applies it (its answer comes after
    /// `action_delay`, counted from receipt too): a read before then shows the old state,
    /// though the CA will act.
    pub apply_after: Duration,
    /// What a repeat of an action already applied is answered (status, code) instead of the
    /// vendor's "already done" error: a refusal no document lists.
    pub repeat_refusal: Option<(u16, &'static str)>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            action_delay: Duration::ZERO,
            limit: None,
            retry_after: None,
            read_lag: 0,
            apply_after: Duration::ZERO,
            repeat_refusal: None,
        }
    }
}

/// A simulated CA's state, shared with the test.
#[derive(Debug, Clone)]
pub struct Sim {
    pub ledger: Arc<Mutex<Ledger>>,
    behaviour: Arc<Behaviour>,
}

impl Sim {
    pub fn new(behaviour: Behaviour) -> Self {
        Sim {
            ledger: Arc::default(),
            behaviour: Arc::new(behaviour),
        }
    }

    /// Adds an order in `state` (the CA's word for it).
    pub fn order(&self, id: &str, state: &str) {
        self.ledger
            .lock()
            .unwrap()
            .orders
            .insert(id.into(), state.into());
    }

    pub fn state(&self, id: &str) -> String {
        self.ledger.lock().unwrap().orders[id].clone()
    }

    /// Every action received for `id`, repeats included.
    pub fn actions(&self, id: &str) -> Vec<String> {
        self.ledger
            .lock()
            .unwrap()
            .actions
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// The actions that changed order `id`.
    pub fn applied(&self, id: &str) -> Vec<String> {
        self.ledger
            .lock()
            .unwrap()
            .applied
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    pub fn throttled(&self) -> usize {
        self.ledger.lock().unwrap().throttled
    }

    /// How long the accepted calls took, first to last, and how many there were.
    pub fn accepted_span(&self) -> (Duration, usize) {
        let ledger = self.ledger.lock().unwrap();
        match (ledger.accepted.first(), ledger.accepted.last()) {
            (Some(a), Some(b)) => (b.duration_since(*a), ledger.accepted.len()),
            _ => (Duration::ZERO, 0),
        }
    }

    /// Whether this request is over the CA's limit (and counts it if not).
    fn over_limit(&self, ledger: &mut Ledger) -> bool {
        let now = Instant::now();
        let Some(Limit(n, span)) = self.behaviour.limit else {
            ledger.accepted.push(now);
            return false;
        };
        while ledger
            .seen
            .front()
            .is_some_and(|t| now.duration_since(*t) >= span)
        {
            ledger.seen.pop_front();
        }
        if ledger.seen.len() >= n {
            ledger.throttled += 1;
            return true;
        }
        ledger.seen.push_back(now);
        ledger.accepted.push(now);
        false
    }

    /// Applies `action` to order `id`: `from` states move to `to` (after `apply_after`);
    /// returns whether it does.
    fn apply(&self, ledger: &mut Ledger, id: &str, action: &str, from: &[&str], to: &str) -> bool {
        ledger
            .actions
            .entry(id.into())
            .or_default()
            .push(action.into());
        let Some(state) = ledger.orders.get(id).cloned() else {
            return false;
        };
        if !from.contains(&state.as_str()) {
            return false;
        }
        if !self.behaviour.apply_after.is_zero() {
            // The CA works on it, whatever becomes of the connection.
            let (sim, id, action, to) = (
                self.clone(),
                id.to_owned(),
                action.to_owned(),
                to.to_owned(),
            );
            std::thread::spawn(move || {
                std::thread::sleep(sim.behaviour.apply_after);
                let mut ledger = sim.ledger.lock().unwrap();
                ledger.orders.insert(id.clone(), to);
                ledger.applied.entry(id).or_default().push(action);
            });
            return true;
        }
        ledger.orders.insert(id.into(), to.into());
        ledger
            .applied
            .entry(id.into())
            .or_default()
            .push(action.into());
        if self.behaviour.read_lag > 0 {
            ledger
                .stale_reads
                .insert(id.into(), (self.behaviour.read_lag, state));
        }
        true
    }

    /// The state a read shows: a stale one while the lag lasts.
    fn read(&self, ledger: &mut Ledger, id: &str) -> Option<String> {
        if let Some((left, old)) = ledger.stale_reads.get_mut(id) {
            if *left > 0 {
                *left -= 1;
                return Some(old.clone());
            }
        }
        ledger.orders.get(id).cloned()
    }

    fn late(&self, answer: ResponseTemplate) -> ResponseTemplate {
        answer.set_delay(self.behaviour.action_delay)
    }
}

/// DigiCert CertCentral: order info, cancel, revoke; `invalid_order_status` on a repeat; 429
/// with `request_limit_exceeded` past its limit.
#[derive(Debug, Clone)]
pub struct DigiCert(pub Sim);

impl DigiCert {
    pub async fn mount(&self, server: &MockServer) {
        Mock::given(path_regex(r"^/services/v2/"))
            .respond_with(self.clone())
            .mount(server)
            .await;
    }

    fn error(status: u16, code: &str, message: &str) -> ResponseTemplate {
        ResponseTemplate::new(status)
            .set_body_json(json!({"errors": [{"code": code, "message": message}]}))
    }
}

impl Respond for DigiCert {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let sim = &self.0;
        let mut ledger = sim.ledger.lock().unwrap();
        if sim.over_limit(&mut ledger) {
            let mut answer = Self::error(429, "request_limit_exceeded", "Too many requests");
            if let Some(secs) = sim.behaviour.retry_after {
                answer = answer.insert_header("Retry-After", secs.to_string().as_str());
            }
            return answer;
        }
        let parts: Vec<&str> = req
            .url
            .path()
            .trim_start_matches("/services/v2/")
            .split('/')
            .collect();
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["order", "certificate", id]) => match sim.read(&mut ledger, id) {
                Some(status) => ResponseTemplate::new(200).set_body_json(json!({
                    "id": id, "status": status,
                    "product": {"name_id": "ssl_basic", "type": "ssl_certificate"}, "requests": []
                })),
                None => Self::error(404, "not_found|order", "Order not found"),
            },
            ("PUT", ["order", "certificate", id, "status"]) => {
                let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
                assert_eq!(
                    body["status"], "canceled",
                    "DigiCert cancels with status canceled"
                );
                if sim.apply(
                    &mut ledger,
                    id,
                    "cancel",
                    &["pending", "needs_approval"],
                    "canceled",
                ) {
                    sim.late(ResponseTemplate::new(204))
                } else if let Some((status, code)) = sim.behaviour.repeat_refusal {
                    Self::error(status, code, "The request cannot be processed.")
                } else {
                    Self::error(
                        400,
                        "invalid_order_status",
                        "The order cannot be canceled in its current status.",
                    )
                }
            }
            ("PUT", ["order", "certificate", id, "revoke"]) => {
                if sim.apply(&mut ledger, id, "revoke", &["issued"], "revoked") {
                    sim.late(ResponseTemplate::new(204))
                } else if let Some((status, code)) = sim.behaviour.repeat_refusal {
                    Self::error(status, code, "The request cannot be processed.")
                } else {
                    Self::error(
                        400,
                        "invalid_order_status",
                        "cannot revoke an order in status revoked",
                    )
                }
            }
            _ => Self::error(404, "not_found|route", "no such route"),
        }
    }
}

/// Sectigo's reseller API: `!AutoRevokeSSL`, `!AutoRefund`, `CollectSSL`; -20 and -18 on
/// repeats, -42 past its limit, answers in HTTP 200 bodies.
#[derive(Debug, Clone)]
pub struct Sectigo {
    pub sim: Sim,
    /// Orders `!AutoRefund` cannot refund (multi-domain): support must.
    pub multi_domain: Arc<Mutex<Vec<String>>>,
}

impl Sectigo {
    pub fn new(sim: Sim) -> Self {
        Sectigo {
            sim,
            multi_domain: Arc::default(),
        }
    }

    pub async fn mount(&self, server: &MockServer) {
        Mock::given(method("POST"))
            .and(path_regex(r"^/products/"))
            .respond_with(self.clone())
            .mount(server)
            .await;
    }
}

impl Respond for Sectigo {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let sim = &self.sim;
        let form: HashMap<String, String> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        let text = |body: &str| ResponseTemplate::new(200).set_body_string(body);
        let mut ledger = sim.ledger.lock().unwrap();
        if sim.over_limit(&mut ledger) {
            return text("-42\nCall limit reached, please try again later");
        }
        let Some(id) = form.get("orderNumber").cloned() else {
            return text("-3\nThe orderNumber argument is missing from the request");
        };
        match req.url.path() {
            "/products/!AutoRevokeSSL" => {
                if sim.apply(&mut ledger, &id, "revoke", &["issued"], "revoked")
                    || sim.apply(&mut ledger, &id, "cancel", &["pending"], "rejected")
                {
                    sim.late(text("0\n"))
                } else {
                    let state = ledger.orders.get(&id).cloned().unwrap_or_default();
                    text(&format!("-20\ncannot revoke an order in status {state}"))
                }
            }
            "/products/!AutoRefund" => {
                ledger
                    .actions
                    .entry(id.clone())
                    .or_default()
                    .push("refund".into());
                if self.multi_domain.lock().unwrap().contains(&id) {
                    return text("-4\nMulti-domain certificates cannot be refunded through the API: submit a support ticket");
                }
                let refunds = ledger.refunded.entry(id.clone()).or_default();
                if *refunds > 0 {
                    return text("-18\nThis order has already been refunded");
                }
                *refunds += 1;
                ledger.applied.entry(id).or_default().push("refund".into());
                sim.late(text("0\n"))
            }
            "/products/download/CollectSSL" => {
                assert_eq!(form.get("queryType").map(String::as_str), Some("0"));
                let code = match sim.read(&mut ledger, &id).as_deref() {
                    Some("issued") => "2",
                    Some("pending") => "0",
                    Some("rejected") => "-20",
                    Some("revoked") => "-21",
                    _ => "-4",
                };
                text(&format!("errorCode={code}&errorMessage="))
            }
            _ => text("-2\nunrecognised command"),
        }
    }
}
