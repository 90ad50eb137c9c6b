//! Pacing per CA account: a burst of operations on one DigiCert key reaches a mock that
//! enforces DigiCert's kind of limits (scaled down in time for the test) without a single 429,
//! while another provider's operations are not held back by it; two gateways on one Postgres
//! share one key's pace, together under its limit and near it.

mod common;

use common::{order, spawn, Setup, KEY};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wiremock::matchers::{header, method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// One sliding window: at most `.0` requests in any `.1`; `.2` the requests seen.
type Window = (usize, Duration, VecDeque<Instant>);

/// A CA that answers 429 when a sliding window overflows, like DigiCert does.
#[derive(Clone)]
struct Limited {
    windows: Arc<Mutex<Vec<Window>>>,
    rejected: Arc<Mutex<usize>>,
    ok: ResponseTemplate,
}

impl Limited {
    fn new(limits: &[(usize, u64)], ok: ResponseTemplate) -> Self {
        let windows = limits
            .iter()
            .map(|(n, ms)| (*n, Duration::from_millis(*ms), VecDeque::new()))
            .collect();
        Limited {
            windows: Arc::new(Mutex::new(windows)),
            rejected: Arc::default(),
            ok,
        }
    }
}

impl Respond for Limited {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap();
        let over = windows.iter_mut().any(|(n, span, seen)| {
            while seen
                .front()
                .is_some_and(|t| now.duration_since(*t) >= *span)
            {
                seen.pop_front();
            }
            seen.len() >= *n
        });
        if over {
            *self.rejected.lock().unwrap() += 1;
            return ResponseTemplate::new(429).set_body_json(
                json!({"errors": [{"code": "request_limit_exceeded", "message": "slow down"}]}),
            );
        }
        for (_, _, seen) in windows.iter_mut() {
            seen.push_back(now);
        }
        self.ok.clone()
    }
}

/// The two tests measure milliseconds against a sliding window: run one at a time, so that
/// neither takes the other's CPU (a 2-core machine, debug builds) and pushes a send past the
/// pace's 50 ms padding.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test]
async fn a_burst_on_one_digicert_key_gets_no_429_and_other_providers_go_on() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let mock = MockServer::start().await;
    // Both the read and the cancel count against the key, as at DigiCert.
    let limits = [(20, 500), (150, 4_000)];
    let shared = Limited::new(&limits, ResponseTemplate::new(204));
    let reads = Limited {
        ok: ResponseTemplate::new(200)
            .set_body_json(json!({"id": "x", "status": "pending", "requests": []})),
        ..shared.clone()
    };
    Mock::given(method("GET"))
        .and(path_regex("^/services/v2/order/certificate/[^/]+$"))
        .respond_with(reads)
        .mount(&mock)
        .await;
    Mock::given(method("PUT"))
        .and(path_regex("^/services/v2/order/certificate/[^/]+/status$"))
        .respond_with(shared.clone())
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(header("x-acs-action", "DescribeCertificateState"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"Type": "domain_verify", "RequestId": "r"})),
        )
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(header("x-acs-action", "CancelOrderRequest"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"RequestId": "r"})))
        .mount(&mock)
        .await;
    let providers = common::providers_toml_at(&mock.uri()).replace(
        common::DIGICERT_LIMITS,
        "rate_limits = [{ requests = 20, per_ms = 500 }, { requests = 150, per_ms = 4000 }]",
    );
    assert!(
        providers.contains("requests = 20, per_ms = 500"),
        "the scaled limits are in place"
    );
    // A lease long enough that a debug build starved of CPU by the burst does not lose one
    // between its claim and its call (the step would then be read and sent again, which the
    // static reads of this mock cannot settle).
    let app = spawn(Setup {
        providers_toml: providers,
        executor: certgate_server::config::ExecutorConfig {
            lease_ms: 10_000,
            ..common::fast_executor()
        },
        ..Setup::default()
    })
    .await;

    let burst = 150;
    let mut ids = Vec::new();
    for i in 0..burst {
        // digicert and geotrust share the key, so they share the pace.
        let provider = if i % 2 == 0 { "digicert" } else { "geotrust" };
        let body = json!({"provider": provider, "intent": "cancel",
                          "order": order(json!({"state": "pending", "issued_at": null, "supplier_order_id": format!("2{i:04}")}))});
        let (status, op) = app.post_operation(KEY, &format!("burst-{i}"), &body).await;
        assert_eq!(status, 202);
        ids.push(op["id"].as_str().unwrap().to_owned());
    }
    // Alibaba operations sent behind the burst (which takes about 8 s) finish long before it.
    let started = Instant::now();
    let mut alibaba = Vec::new();
    for i in 0..10 {
        let body = json!({"provider": "alibaba", "intent": "cancel",
                          "order": order(json!({"state": "pending", "issued_at": null, "supplier_order_id": format!("3{i:04}")}))});
        let (_, op) = app.post_operation(KEY, &format!("ali-{i}"), &body).await;
        alibaba.push(op["id"].as_str().unwrap().to_owned());
    }
    for id in &alibaba {
        app.wait_for(id, &["completed"]).await;
    }
    let alibaba_took = started.elapsed();
    assert!(
        alibaba_took < Duration::from_secs(4),
        "alibaba was held back: {alibaba_took:?}"
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    for id in &ids {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the burst did not finish");
        let op = app.wait_for(id, &["completed", "failed"]).await;
        assert_eq!(op["status"], "completed", "{op:#}");
        assert_eq!(
            op["steps"][0]["attempts"], 1,
            "no call was refused and retried: {op:#}"
        );
    }
    assert_eq!(
        *shared.rejected.lock().unwrap(),
        0,
        "the mock CA answered 429"
    );
    app.stop().await;
}

/// Two gateways on one Postgres, one DigiCert key: together they stay under the key's limit
/// and together reach it.
#[tokio::test]
async fn two_gateways_on_one_postgres_share_one_pace() {
    use common::sim::{Behaviour, DigiCert, Limit, Sim};
    let _alone = ONE_AT_A_TIME.lock().await;
    let Some(url) = common::fresh_postgres("two_gateways_on_one_postgres_share_one_pace").await
    else {
        return;
    };
    let (limit, span) = (20, Duration::from_secs(1));
    let mock = MockServer::start().await;
    let sim = Sim::new(Behaviour {
        limit: Some(Limit(limit, span)),
        ..Behaviour::default()
    });
    DigiCert(sim.clone()).mount(&mock).await;
    let run = common::run_digits();
    // A key of this run only: other runs on the same database keep their own pace.
    let var = format!("CERTGATE_TEST_PACE_KEY_{run}");
    std::env::set_var(&var, "k");
    let providers = common::providers_toml_at(&mock.uri())
        .replace(
            common::DIGICERT_LIMITS,
            "rate_limits = [{ requests = 20, per_ms = 1000 }]",
        )
        .replace("${DIGICERT_API_KEY}", &format!("${{{var}}}"));
    let tenant_id = format!("pace-{run}");
    let key = format!("key-{run}");
    let setup = || Setup {
        providers_toml: providers.clone(),
        database: url.clone(),
        tenants: vec![common::tenant(&tenant_id, &key, None)],
        executor: certgate_server::config::ExecutorConfig::default(),
        ..Setup::default()
    };
    let a = spawn(setup()).await;
    let b = spawn(setup()).await;
    let n = 120;
    let mut ids = Vec::new();
    for i in 0..n {
        let order_id = format!("{run}{i:04}");
        sim.order(&order_id, "issued");
        let app = if i % 2 == 0 { &a } else { &b };
        let body = json!({"provider": "digicert", "intent": "revoke",
                          "order": order(json!({"supplier_order_id": order_id, "certificate_id": null}))});
        let (status, op) = app.post_operation(&key, &format!("op-{i}"), &body).await;
        assert_eq!(status, 202, "{op}");
        ids.push(op["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        let op = a
            .wait_for_long_as(&key, id, &["completed", "failed"], Duration::from_secs(120))
            .await;
        assert_eq!(op["status"], "completed", "{op:#}");
    }
    assert_eq!(
        sim.throttled(),
        0,
        "together they went over the key's limit"
    );
    // Two calls an operation; the first `limit` go at once.
    let (took, calls) = sim.accepted_span();
    assert_eq!(calls, 2 * n);
    let minimum = span * ((calls - 1) / limit) as u32;
    let efficiency = minimum.as_secs_f64() / took.as_secs_f64();
    assert!(
        efficiency >= 0.85,
        "{calls} calls took {took:?}, minimum {minimum:?}: efficiency {efficiency:.2}"
    );
    a.stop().await;
    b.stop().await;
}
