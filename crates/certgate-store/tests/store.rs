//! One story per store behaviour, run on SQLite always and on Postgres when
//! `CERTGATE_TEST_POSTGRES_URL` names a server (each run in a fresh schema-less database state:
//! ids are unique per run).

use certgate_core::event::{DeliveryStatus, DeliveryTarget, EventType};
use certgate_core::operation::Status;
use certgate_core::ticket::TicketStatus;
use certgate_core::TenantId;
use certgate_store::*;
use std::time::Duration;

/// The stores to run on: SQLite in memory, a SQLite file, and Postgres if configured.
async fn stores() -> Vec<(String, Store)> {
    let dir = std::env::temp_dir().join(format!(
        "certgate-store-{}-{}",
        std::process::id(),
        unique()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = format!("sqlite://{}", dir.join("test.db").display());
    let mut out = vec![
        (
            "sqlite-memory".to_owned(),
            Store::connect("sqlite::memory:").await.unwrap(),
        ),
        (
            "sqlite-file".to_owned(),
            Store::connect(&file).await.unwrap(),
        ),
    ];
    match std::env::var("CERTGATE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => {
            out.push(("postgres".to_owned(), Store::connect(&url).await.unwrap()))
        }
        _ => eprintln!("SKIPPED on Postgres: CERTGATE_TEST_POSTGRES_URL is not set"),
    }
    out
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}{}", N.fetch_add(1, Ordering::Relaxed))
}

fn new_op<'a>(id: &'a str, tenant: &'a TenantId, key: &'a str, hash: &'a str) -> NewOperation<'a> {
    NewOperation {
        id,
        tenant,
        idempotency_key: key,
        request_hash: hash,
        provider: "digicert",
        status: Status::Queued,
        now: 1_000,
        // Not due: a gateway sharing this database must not pick up test rows.
        next_run_at: None,
        body: format!("{{\"id\":\"{id}\"}}"),
    }
}

fn audit(tenant: &TenantId, action: &str) -> AuditEntry {
    AuditEntry {
        tenant: tenant.clone(),
        at: 1_000,
        actor: "test".into(),
        action: action.into(),
        target: "x".into(),
        outcome: "ok".into(),
        detail: String::new(),
    }
}

#[tokio::test]
async fn idempotency_keys_return_the_first_operation() {
    for (name, store) in stores().await {
        let t = TenantId::from(unique());
        let id = format!("op_{}", unique());
        let effects = Effects {
            audit: vec![audit(&t, "operation.create")],
            ..Default::default()
        };
        assert!(
            matches!(
                store
                    .insert_operation(&new_op(&id, &t, "k1", "h1"), &effects, None)
                    .await
                    .unwrap(),
                Inserted::New
            ),
            "{name}"
        );
        let other = format!("op_{}", unique());
        match store
            .insert_operation(&new_op(&other, &t, "k1", "h2"), &effects, None)
            .await
            .unwrap()
        {
            Inserted::Existing(row) => {
                assert_eq!(row.id, id, "{name}");
                assert_eq!(row.request_hash, "h1");
            }
            other => panic!("{name}: a key was used twice: {other:?}"),
        }
        // Another tenant may use the same key.
        let t2 = TenantId::from(unique());
        assert!(matches!(
            store
                .insert_operation(&new_op(&other, &t2, "k1", "h1"), &Effects::default(), None)
                .await
                .unwrap(),
            Inserted::New
        ));
        assert!(
            store.get_operation(&t2, &id).await.unwrap().is_none(),
            "{name}: tenants are separate"
        );
        assert_eq!(
            store.list_audit(&t, None, 10).await.unwrap().len(),
            1,
            "{name}"
        );
    }
}

#[tokio::test]
async fn claims_lease_one_operation_to_one_owner_and_parked_ones_to_none() {
    for (name, store) in stores().await {
        let t = TenantId::from(unique());
        let id = format!("op_{}", unique());
        let mut op = new_op(&id, &t, "k", "h");
        op.now = -10;
        op.next_run_at = Some(-10); // due before any other test's operations
        store
            .insert_operation(&op, &Effects::default(), None)
            .await
            .unwrap();
        let claimed = store
            .claim_operation("a", 0, Duration::from_secs(30))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.id, id, "{name}");
        // Leased: nobody else gets it until the lease ends.
        let second = store
            .claim_operation("b", 1, Duration::from_secs(30))
            .await
            .unwrap();
        assert!(second.is_none_or(|r| r.id != id), "{name}");
        assert!(store.renew_lease(&id, "a", 60_000).await.unwrap());
        assert!(!store.renew_lease(&id, "b", 60_000).await.unwrap());
        // A write by someone who does not hold the lease is refused.
        let save = |owner: &'static str, version: i64| SaveOperation {
            id: &id,
            expected_version: version,
            owner: Some(owner),
            keep_lease: false,
            keep_schedule: false,
            status: Status::Completed,
            now: 2,
            next_run_at: None,
            body: "{}".into(),
        };
        assert!(
            !store
                .save_operation(&save("b", claimed.version), &Effects::default())
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            !store
                .save_operation(&save("a", claimed.version - 1), &Effects::default())
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            store
                .save_operation(&save("a", claimed.version), &Effects::default())
                .await
                .unwrap(),
            "{name}"
        );
        let row = store.get_operation(&t, &id).await.unwrap().unwrap();
        assert_eq!(
            (row.status.as_str(), row.next_run_at, row.lease_owner),
            ("completed", None, None)
        );
        // An operation parked (unreadable) is never claimed again. Claims happen in this one
        // test only, so tests sharing a database cannot take each other's rows.
        let parked = format!("op_{}", unique());
        let mut op = new_op(&parked, &t, "k-parked", "h");
        op.next_run_at = Some(-20);
        store
            .insert_operation(&op, &Effects::default(), None)
            .await
            .unwrap();
        let claimed = store
            .claim_operation("a", 0, Duration::from_millis(1))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claimed.id, parked, "{name}");
        store.park_operation(&parked, "a").await.unwrap();
        let row = store.get_operation(&t, &parked).await.unwrap().unwrap();
        assert_eq!(
            (row.status.as_str(), row.next_run_at),
            ("failed", None),
            "{name}"
        );
        let again = store
            .claim_operation("b", 1_000_000, Duration::from_secs(1))
            .await
            .unwrap();
        assert!(again.is_none_or(|r| r.id != parked), "{name}");
    }
}

#[tokio::test]
async fn tickets_events_and_deliveries_commit_with_the_operation() {
    for (name, store) in stores().await {
        let t = TenantId::from(unique());
        let id = format!("op_{}", unique());
        store
            .insert_operation(&new_op(&id, &t, "k", "h"), &Effects::default(), None)
            .await
            .unwrap();
        let row = store.get_operation(&t, &id).await.unwrap().unwrap();
        let ticket = format!("tk_{}", unique());
        let effects = Effects {
            tickets: vec![TicketWrite::Open {
                id: ticket.clone(),
                tenant: t.clone(),
                operation_id: id.clone(),
                provider: "digicert".into(),
                due_at: None,
                now: 5,
                body: "{}".into(),
            }],
            events: vec![event(&t, &id, 1), event(&t, &id, 2)],
            deliveries: vec![delivery(&t, &id, 1), delivery(&t, &id, 2)],
            ..Effects::default()
        };
        let save = SaveOperation {
            id: &id,
            expected_version: row.version,
            owner: None,
            keep_lease: false,
            keep_schedule: false,
            status: Status::ManualTicketOpen,
            now: 5,
            next_run_at: None,
            body: "{}".into(),
        };
        assert!(
            store.save_operation(&save, &effects).await.unwrap(),
            "{name}"
        );
        assert_eq!(
            store
                .list_tickets(&t, Some(TicketStatus::Open), None, 10)
                .await
                .unwrap()
                .len(),
            1
        );
        // A ticket update from the wrong status rolls the whole write back.
        let stale = Effects {
            tickets: vec![TicketWrite::Update {
                id: ticket.clone(),
                from: TicketStatus::Done,
                to: TicketStatus::Open,
                now: 6,
                body: "{}".into(),
            }],
            events: vec![event(&t, &id, 3)],
            deliveries: vec![delivery(&t, &id, 3)],
            ..Effects::default()
        };
        let save2 = SaveOperation {
            expected_version: row.version + 1,
            ..save
        };
        assert!(
            !store.save_operation(&save2, &stale).await.unwrap(),
            "{name}"
        );
        let feed = store.list_events(&t, 0, None, 10).await.unwrap();
        let ids: Vec<_> = feed.iter().map(|e| e.id.clone()).collect();
        assert_eq!(
            ids,
            [format!("evt_{t}_1"), format!("evt_{t}_2")],
            "{name}: rolled back"
        );
        assert!(feed[0].seq < feed[1].seq);
        // The feed goes on after a cursor, and filters by type.
        let rest = store.list_events(&t, feed[0].seq, None, 10).await.unwrap();
        assert_eq!(rest, feed[1..], "{name}");
        let tickets = store
            .list_events(&t, 0, Some(EventType::TicketOpened), 10)
            .await
            .unwrap();
        assert_eq!(tickets.len(), 1, "{name}");
        assert!(store
            .list_events(&"other".into(), 0, None, 10)
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .get_event(&"other".into(), &ids[0])
            .await
            .unwrap()
            .is_none());
        let pending = store
            .list_deliveries(&t, Some(DeliveryStatus::Pending), 0, 10)
            .await
            .unwrap();
        assert_eq!(pending.len(), 2, "{name}: rolled back");
    }
}

fn event(tenant: &TenantId, stream: &str, n: u32) -> EventWrite {
    EventWrite {
        id: format!("evt_{tenant}_{n}"),
        tenant: tenant.clone(),
        kind: if n == 2 {
            EventType::TicketOpened
        } else {
            EventType::OperationStatusChanged
        },
        stream: stream.into(),
        now: 5,
        body: format!("{{\"n\":{n}}}"),
    }
}

/// Test deliveries are due in the year 3000 (`T0`), so that a gateway sharing a Postgres
/// database with these tests never picks them up.
const T0: i64 = 32_503_680_000_000;

fn delivery(tenant: &TenantId, stream: &str, n: u32) -> DeliveryWrite {
    DeliveryWrite {
        tenant: tenant.clone(),
        event_id: format!("evt_{tenant}_{n}"),
        event_type: EventType::OperationStatusChanged,
        target: DeliveryTarget::Webhook,
        stream: stream.into(),
        url: "http://x".into(),
        payload: format!("{n}"),
        now: T0 + 5,
        expires_at: T0 + 1_000,
    }
}

/// Queues deliveries for the tenant `t`: `per_stream` on each of `streams`.
async fn queue(store: &Store, t: &TenantId, streams: &[&str], per_stream: u32) {
    let id = format!("op_{}", unique());
    let mut deliveries = Vec::new();
    for n in 1..=per_stream {
        for s in streams {
            deliveries.push(delivery(t, s, n));
        }
    }
    let fx = Effects {
        deliveries,
        ..Default::default()
    };
    store
        .insert_operation(&new_op(&id, t, &id, "h"), &fx, None)
        .await
        .unwrap();
}

/// An attempt at `T0 + now` that delivered.
fn delivered(now: i64) -> Attempt {
    Attempt {
        status_code: Some(204),
        error: None,
        next_attempt_at: None,
        now: T0 + now,
    }
}

/// An attempt at `T0 + now` that failed, due again at `T0 + next` (or dead).
fn failed(now: i64, next: Option<i64>) -> Attempt {
    Attempt {
        status_code: Some(503),
        error: Some("the receiver answered 503".into()),
        next_attempt_at: next.map(|n| T0 + n),
        now: T0 + now,
    }
}

#[tokio::test]
async fn deliveries_go_in_order_per_stream_and_a_dead_one_is_replayed() {
    let lease = Duration::from_secs(30);
    for (name, store) in stores().await {
        let t = TenantId::from(unique());
        queue(&store, &t, &["a", "b"], 2).await;
        assert!(store
            .due_lanes(T0 + 10)
            .await
            .unwrap()
            .contains(&(t.clone(), DeliveryTarget::Webhook)));
        // The first of each stream is handed out; the second of a stream waits for the first.
        let a1 = store
            .claim_delivery(&t, DeliveryTarget::Webhook, T0 + 10, lease)
            .await
            .unwrap()
            .unwrap();
        let b1 = store
            .claim_delivery(&t, DeliveryTarget::Webhook, T0 + 10, lease)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (a1.stream.as_str(), b1.stream.as_str()),
            ("a", "b"),
            "{name}"
        );
        assert_eq!(a1.attempts, 1);
        assert!(store
            .claim_delivery(&t, DeliveryTarget::Helpdesk, T0 + 10, lease)
            .await
            .unwrap()
            .is_none());
        assert!(
            store
                .claim_delivery(&t, DeliveryTarget::Webhook, T0 + 10, lease)
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
        // a1 fails: due again at 50, and a2 still waits behind it.
        store
            .record_attempt(a1.id, &failed(10, Some(50)))
            .await
            .unwrap();
        store.record_attempt(b1.id, &delivered(10)).await.unwrap();
        let b2 = store
            .claim_delivery(&t, DeliveryTarget::Webhook, T0 + 20, lease)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (b2.stream.as_str(), b2.payload.as_str()),
            ("b", "2"),
            "{name}"
        );
        store.record_attempt(b2.id, &delivered(20)).await.unwrap();
        assert!(
            store
                .claim_delivery(&t, DeliveryTarget::Webhook, T0 + 20, lease)
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
        let again = store
            .claim_delivery(&t, DeliveryTarget::Webhook, T0 + 50, lease)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((again.id, again.attempts), (a1.id, 2), "{name}");
        let row = store.get_delivery(&t, a1.id).await.unwrap().unwrap();
        assert_eq!(row.last_status_code, Some(503));
        // It dies: the stream moves on to a2.
        store
            .record_attempt(a1.id, &failed(60, None))
            .await
            .unwrap();
        let a2 = store
            .claim_delivery(&t, DeliveryTarget::Webhook, T0 + 60, lease)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (a2.stream.as_str(), a2.payload.as_str()),
            ("a", "2"),
            "{name}"
        );
        store
            .record_attempt(a2.id, &failed(60, None))
            .await
            .unwrap();
        let backlog = store.delivery_backlog().await.unwrap();
        let mine = backlog.iter().find(|b| b.tenant == t).unwrap();
        assert_eq!(
            (mine.pending, mine.dead, mine.oldest_pending),
            (0, 2, None),
            "{name}"
        );
        let dead = store
            .list_deliveries(&t, Some(DeliveryStatus::Dead), 0, 10)
            .await
            .unwrap();
        assert_eq!(
            dead.iter().map(|d| d.id).collect::<Vec<_>>(),
            [a1.id, a2.id]
        );
        // Replayed: pending again, in their order, a2 behind a1.
        assert_eq!(
            store
                .redeliver_all(&t, DeliveryStatus::Dead, T0 + 70, T0 + 2_000)
                .await
                .unwrap(),
            2
        );
        assert_eq!(
            store
                .redeliver_all(&"other".into(), DeliveryStatus::Dead, T0 + 70, T0 + 2_000)
                .await
                .unwrap(),
            0
        );
        let first = store
            .claim_delivery(&t, DeliveryTarget::Webhook, T0 + 70, lease)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (first.id, first.expires_at, first.attempts),
            (a1.id, T0 + 2_000, 1),
            "{name}"
        );
        assert!(
            store
                .claim_delivery(&t, DeliveryTarget::Webhook, T0 + 70, lease)
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
        store
            .record_attempt(first.id, &delivered(70))
            .await
            .unwrap();
        let mine = store
            .delivery_backlog()
            .await
            .unwrap()
            .into_iter()
            .find(|b| b.tenant == t)
            .unwrap();
        assert_eq!(
            (mine.pending, mine.dead, mine.oldest_pending),
            (1, 0, Some(T0 + 5)),
            "{name}"
        );
        // One delivery replayed by id; none of another tenant's.
        assert!(store
            .redeliver(&"other".into(), a1.id, T0 + 80, T0 + 3_000)
            .await
            .unwrap()
            .is_none());
        let one = store
            .redeliver(&t, a1.id, T0 + 80, T0 + 3_000)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (one.status, one.delivered_at),
            (DeliveryStatus::Pending, None),
            "{name}"
        );
    }
}

#[tokio::test]
async fn old_events_and_delivered_deliveries_are_pruned_but_pending_and_dead_ones_kept() {
    for (name, store) in stores().await {
        let t = TenantId::from(unique());
        let id = format!("op_{}", unique());
        // Older than any other test's rows, so that pruning leaves those alone.
        let old = -100;
        let fx = Effects {
            events: [1, 2, 3]
                .map(|n| EventWrite {
                    now: old,
                    ..event(&t, &id, n)
                })
                .into(),
            deliveries: [1, 2, 3]
                .map(|n| DeliveryWrite {
                    now: old,
                    ..delivery(&t, &id, n)
                })
                .into(),
            ..Default::default()
        };
        store
            .insert_operation(&new_op(&id, &t, "k", "h"), &fx, None)
            .await
            .unwrap();
        let claim =
            || store.claim_delivery(&t, DeliveryTarget::Webhook, 10, Duration::from_secs(1));
        // The first is delivered, the second dies, the third is pending.
        let d1 = claim().await.unwrap().unwrap();
        store.record_attempt(d1.id, &delivered(10)).await.unwrap();
        let d2 = claim().await.unwrap().unwrap();
        store
            .record_attempt(d2.id, &failed(20, None))
            .await
            .unwrap();
        let left = |store: &Store| {
            let t = t.clone();
            let store = store.clone();
            async move {
                let events: Vec<_> = store
                    .list_events(&t, 0, None, 10)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|e| e.id)
                    .collect();
                let mut deliveries: Vec<_> = store
                    .list_deliveries(&t, None, 0, 10)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|d| d.status)
                    .collect();
                deliveries.sort_by_key(|s| s.as_str());
                (events, deliveries)
            }
        };
        store.prune_events(old + 1).await.unwrap();
        assert_eq!(
            left(&store).await,
            (
                vec![format!("evt_{t}_2"), format!("evt_{t}_3")],
                vec![DeliveryStatus::Dead, DeliveryStatus::Pending]
            ),
            "{name}: the dead and the pending delivery stay, with their events"
        );
        // An operator prunes the dead ones explicitly: another tenant's prune leaves them.
        assert_eq!(
            store
                .prune_dead_deliveries(Some(&TenantId::from("another-tenant")), old + 1)
                .await
                .unwrap(),
            0,
            "{name}"
        );
        assert_eq!(
            store
                .prune_dead_deliveries(Some(&t), old + 1)
                .await
                .unwrap(),
            1,
            "{name}"
        );
        store.prune_events(old + 1).await.unwrap();
        assert_eq!(
            left(&store).await,
            (vec![format!("evt_{t}_3")], vec![DeliveryStatus::Pending]),
            "{name}: the dead one's event goes with the next prune"
        );
    }
}

#[tokio::test]
async fn pruning_runs_in_batches_until_nothing_is_left() {
    for (name, store) in stores().await {
        let t = TenantId::from(unique());
        let id = format!("op_{}", unique());
        let old = -200;
        // Rows older than the other pruning test's, so that its prune may take these too but
        // this one never takes its.
        let n = 2 * certgate_store::PRUNE_BATCH as u32 + 7;
        let fx = Effects {
            events: (0..n)
                .map(|i| EventWrite {
                    now: old,
                    ..event(&t, &id, i)
                })
                .collect(),
            ..Default::default()
        };
        store
            .insert_operation(&new_op(&id, &t, "k", "h"), &fx, None)
            .await
            .unwrap();
        store.prune_events(old + 1).await.unwrap();
        assert!(
            store.list_events(&t, 0, None, 10).await.unwrap().is_empty(),
            "{name}: all {n} pruned, batch after batch"
        );
    }
}

#[tokio::test]
async fn lists_are_paged_newest_first() {
    for (name, store) in stores().await {
        let t = TenantId::from(unique());
        let ids: Vec<String> = (0..5).map(|i| format!("op_{}_{i}", unique())).collect();
        for (i, id) in ids.iter().enumerate() {
            let key = format!("k{i}");
            store
                .insert_operation(&new_op(id, &t, &key, "h"), &Effects::default(), None)
                .await
                .unwrap();
        }
        let page = store
            .list_operations(
                &t,
                &OperationFilter {
                    limit: 2,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            [ids[4].as_str(), ids[3].as_str()],
            "{name}"
        );
        let next = store
            .list_operations(
                &t,
                &OperationFilter {
                    limit: 10,
                    before: Some(&page[1].id),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(next.len(), 3);
        let none = store
            .list_operations(
                &t,
                &OperationFilter {
                    limit: 10,
                    status: Some(Status::Completed),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(none.is_empty());
    }
}

#[tokio::test]
async fn a_sqlite_file_reopened_after_a_crash_releases_its_leases_at_once() {
    let dir = std::env::temp_dir().join(format!("certgate-store-excl-{}", unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = format!("sqlite://{}", dir.join("one.db").display());
    let first = Store::connect(&file).await.unwrap();
    let t = TenantId::from("t");
    let mut op = new_op("op_crashed", &t, "k", "h");
    op.next_run_at = Some(1_000);
    first
        .insert_operation(&op, &Effects::default(), None)
        .await
        .unwrap();
    let claimed = first
        .claim_operation("gone", 1_000, Duration::from_secs(3_600))
        .await
        .unwrap();
    assert_eq!(claimed.map(|r| r.id).as_deref(), Some("op_crashed"));
    // Another command opening the file touches no lease.
    let beside = Store::connect(&file).await.unwrap();
    assert!(beside
        .claim_operation("beside", 1_000, Duration::from_secs(30))
        .await
        .unwrap()
        .is_none());
    beside.close().await;
    // While the gateway holds the file's lock, no second one gets it.
    let lock = StoreLock::acquire(&file).unwrap().unwrap();
    match StoreLock::acquire(&file) {
        Err(StoreError::Locked { holder, .. }) => {
            assert!(holder.contains(&std::process::id().to_string()), "{holder}")
        }
        other => panic!("{other:?}"),
    }
    drop(lock);
    // The gateway dies with its lease held for an hour; the next one, holding the lock,
    // takes over at once.
    first.close().await;
    let next = Store::connect(&file).await.unwrap();
    let lock = StoreLock::acquire(&file).unwrap().unwrap();
    next.release_stale_leases(&lock).await.unwrap();
    let reclaimed = next
        .claim_operation("next", 2_000, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(reclaimed.map(|r| r.id).as_deref(), Some("op_crashed"));
    next.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn concurrent_batches_check_each_watched_order_once_and_lists_sort_soonest_first() {
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};
    for (name, store) in stores().await {
        let t = TenantId::from(format!("w{}", unique()));
        let orders: Vec<WatchedWrite> = (0..300)
            .map(|i| WatchedWrite {
                tenant: t.clone(),
                id: format!("o-{i:03}"),
                provider: "geotrust".into(),
                body: "{}".into(),
                check: WatchedCheck {
                    window_state: "{}".into(),
                    // Every third order has no window.
                    submit_by: (i % 3 != 0).then_some(10_000 - i64::from(i)),
                    deadline: (i % 3 != 0).then_some(20_000),
                    next_check_at: 1_000,
                },
                now: 1_000,
            })
            .collect();
        store.import_watched(&orders).await.unwrap();
        // Three workers share the pass, fifty orders a transaction.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let workers: Vec<_> = (0..3)
            .map(|_| {
                let (store, seen, t) = (store.clone(), seen.clone(), t.clone());
                tokio::spawn(async move {
                    loop {
                        let n = store
                            .watch_batch(2_000, 50, |row, _| {
                                if row.tenant == t {
                                    seen.lock().unwrap().push(row.id.clone());
                                }
                                WatchedCheck {
                                    window_state: row.window_state.clone(),
                                    submit_by: None,
                                    deadline: None,
                                    // Never due again in this story.
                                    next_check_at: i64::MAX / 2,
                                }
                            })
                            .await
                            .unwrap();
                        if n == 0 {
                            break;
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
        let seen = seen.lock().unwrap().clone();
        let distinct: HashSet<&String> = seen.iter().collect();
        assert_eq!((seen.len(), distinct.len()), (300, 300), "{name}");
        let row = store.get_watched(&t, "o-007").await.unwrap().unwrap();
        assert_eq!(
            (row.next_check_at, row.submit_key),
            (i64::MAX / 2, NO_WINDOW),
            "{name}"
        );

        // A list before any check: soonest submit_by first, then those without a window.
        let t2 = TenantId::from(format!("l{}", unique()));
        let fresh: Vec<WatchedWrite> = orders
            .iter()
            .take(6)
            .map(|w| WatchedWrite {
                tenant: t2.clone(),
                ..w.clone()
            })
            .collect();
        store.import_watched(&fresh).await.unwrap();
        let page = |after: Option<(i64, &'static str)>| WatchedFilter {
            after,
            limit: 4,
            ..Default::default()
        };
        let rows = store.list_watched(&t2, &page(None)).await.unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["o-005", "o-004", "o-002", "o-001"], "{name}");
        let last = rows.last().unwrap();
        let key = last.submit_key;
        let rows = store
            .list_watched(&t2, &page(Some((key, "o-001"))))
            .await
            .unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["o-000", "o-003"], "{name}");
        let closing = WatchedFilter {
            open_at: Some(15_000),
            submit_by_until: Some(9_998),
            limit: 10,
            ..Default::default()
        };
        let rows = store.list_watched(&t2, &closing).await.unwrap();
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["o-005", "o-004", "o-002"], "{name}");
        assert!(store.delete_watched(&t2, "o-005", None).await.unwrap());
        assert!(!store.delete_watched(&t2, "o-005", None).await.unwrap());
    }
}

#[tokio::test]
async fn reads_beside_a_stream_of_writes_see_every_committed_version() {
    for (name, store) in stores().await {
        let t = TenantId::from(format!("r{}", unique()));
        let id = format!("op_read_{}", unique());
        store
            .insert_operation(&new_op(&id, &t, "k", "h"), &Effects::default(), None)
            .await
            .unwrap();
        let first = store.get_operation(&t, &id).await.unwrap().unwrap();
        // A reader polls while the writer saves 50 versions; each read is at least as new as
        // the last save that had returned before it began, and never goes back.
        let committed = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(first.version));
        let reader = {
            let (store, t, id, committed) =
                (store.clone(), t.clone(), id.clone(), committed.clone());
            tokio::spawn(async move {
                let mut last = 0;
                let mut reads = 0;
                while committed.load(std::sync::atomic::Ordering::Acquire) < first.version + 50 {
                    let floor = committed.load(std::sync::atomic::Ordering::Acquire);
                    let row = store.get_operation(&t, &id).await.unwrap().unwrap();
                    assert!(row.version >= floor && row.version >= last);
                    if row.version > first.version {
                        assert_eq!(row.body, format!("{{\"v\":{}}}", row.version));
                    }
                    last = row.version;
                    reads += 1;
                    tokio::task::yield_now().await;
                }
                reads
            })
        };
        for v in first.version..first.version + 50 {
            let saved = store
                .save_operation(
                    &SaveOperation {
                        id: &id,
                        expected_version: v,
                        owner: None,
                        keep_lease: false,
                        keep_schedule: false,
                        status: Status::Running,
                        now: 2,
                        next_run_at: None,
                        body: format!("{{\"v\":{}}}", v + 1),
                    },
                    &Effects::default(),
                )
                .await
                .unwrap();
            assert!(saved, "{name}");
            committed.store(v + 1, std::sync::atomic::Ordering::Release);
        }
        assert!(reader.await.unwrap() > 0, "{name}");
        let last = store.get_operation(&t, &id).await.unwrap().unwrap();
        assert_eq!(
            (last.version, last.status),
            (first.version + 50, Status::Running),
            "{name}"
        );
        assert!(
            store
                .get_operation(&"other".into(), &id)
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_ca_order_is_one_tenants_whoever_races_for_it() {
    for (name, store) in stores().await {
        let account = format!("digicert|test|{}", unique());
        let order = OrderRef {
            account: &account,
            order: "4242",
        };
        let (a, b) = (format!("a{}", unique()), format!("b{}", unique()));
        let claim = |tenant: &'static TenantId| Claim {
            order,
            tenant,
            provider: "digicert",
            sticky: true,
            now: 1_000,
        };
        let leak = |t: String| -> &'static TenantId { Box::leak(Box::new(TenantId::from(t))) };
        let (a, b) = (leak(a), leak(b));
        // Both tenants at once, many times over: exactly one operation is stored.
        let ids: Vec<String> = (0..2).map(|_| format!("op_{}", unique())).collect();
        let (ca, cb) = (claim(a), claim(b));
        let (opa, opb, fx) = (
            new_op(&ids[0], a, "k", "h"),
            new_op(&ids[1], b, "k", "h"),
            Effects::default(),
        );
        let (ra, rb) = tokio::join!(
            store.insert_operation(&opa, &fx, Some(&ca)),
            store.insert_operation(&opb, &fx, Some(&cb)),
        );
        let outcomes = [ra.unwrap(), rb.unwrap()];
        let won: Vec<bool> = outcomes
            .iter()
            .map(|o| matches!(o, Inserted::New))
            .collect();
        assert_eq!(
            won.iter().filter(|w| **w).count(),
            1,
            "{name}: {outcomes:?}"
        );
        let (winner, loser, lost_id) = if won[0] {
            (a, b, &ids[1])
        } else {
            (b, a, &ids[0])
        };
        assert!(matches!(
            outcomes[usize::from(won[0])],
            Inserted::OwnedElsewhere
        ));
        assert!(
            store.get_operation(loser, lost_id).await.unwrap().is_none(),
            "{name}: nothing of the loser's was stored"
        );
        assert_eq!(
            &store.order_owner(order).await.unwrap().unwrap().tenant,
            winner
        );
        // The winner acts on it again; the loser's watch is refused too.
        let again = format!("op_{}", unique());
        assert!(matches!(
            store
                .insert_operation(
                    &new_op(&again, winner, "k2", "h"),
                    &Effects::default(),
                    Some(&claim(winner))
                )
                .await
                .unwrap(),
            Inserted::New
        ));
        // The operator moves it: the loser may act now, and both audit logs say so.
        let to = Assignment {
            account: &account,
            tenant: loser,
            provider: "digicert",
            now: 2_000,
            actor: "operator",
        };
        let before = store.assign_orders(&["4242"], &to).await.unwrap();
        assert_eq!(before, [Some(winner.to_string())], "{name}");
        assert_eq!(
            &store.order_owner(order).await.unwrap().unwrap().tenant,
            loser
        );
        for t in [winner, loser] {
            let log = store.list_audit(t, None, 10).await.unwrap();
            assert!(
                log.iter().any(|e| e.action == "order.assign"),
                "{name}: {t}"
            );
        }
        let moved = format!("op_{}", unique());
        assert!(matches!(
            store
                .insert_operation(
                    &new_op(&moved, loser, "k3", "h"),
                    &Effects::default(),
                    Some(&claim(loser))
                )
                .await
                .unwrap(),
            Inserted::New
        ));
    }
}

#[tokio::test]
async fn an_operation_nothing_would_run_is_counted_and_repaired() {
    // Not on the shared Postgres database: the repaired row falls due at once, and the other
    // stories there claim due rows.
    for (name, store) in stores().await.into_iter().filter(|(n, _)| n != "postgres") {
        let t = TenantId::from(format!("stall{}", unique()));
        let id = format!("op_stalled_{}", unique());
        let mut op = new_op(&id, &t, "k", "h");
        op.status = Status::Running;
        // Far in the past, so that other runs' rows on a shared database are not touched.
        op.now = 5;
        store
            .insert_operation(&op, &Effects::default(), None)
            .await
            .unwrap();
        let waiting = format!("op_ticket_{}", unique());
        let mut ticket = new_op(&waiting, &t, "k2", "h");
        ticket.status = Status::ManualTicketOpen;
        store
            .insert_operation(&ticket, &Effects::default(), None)
            .await
            .unwrap();
        let before = store.counts(10).await.unwrap().stalled;
        assert!(before >= 1, "{name}");
        let repaired = store.repair_stalled(10).await.unwrap();
        assert!(repaired.contains(&id), "{name}: {repaired:?}");
        assert!(
            !repaired.contains(&waiting),
            "{name}: a ticket waits for a person"
        );
        assert_eq!(store.counts(10).await.unwrap().stalled, 0, "{name}");
        let row = store.get_operation(&t, &id).await.unwrap().unwrap();
        assert_eq!(row.next_run_at, Some(10), "{name}");
    }
}
