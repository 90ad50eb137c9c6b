//! One story per store behaviour, run on SQLite always and on Postgres when
//! `CERTGATE_TEST_POSTGRES_URL` names a server (each run in a fresh schema-less database state:
//! ids are unique per run).

use certgate_core::operation::Status;
use certgate_core::ticket::TicketStatus;
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

fn new_op<'a>(id: &'a str, tenant: &'a str, key: &'a str, hash: &'a str) -> NewOperation<'a> {
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

fn audit(tenant: &str, action: &str) -> AuditEntry {
    AuditEntry {
        tenant: tenant.into(),
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
        let t = unique();
        let id = format!("op_{}", unique());
        let effects = Effects {
            audit: vec![audit(&t, "operation.create")],
            ..Default::default()
        };
        assert!(
            matches!(
                store
                    .insert_operation(&new_op(&id, &t, "k1", "h1"), &effects)
                    .await
                    .unwrap(),
                Inserted::New
            ),
            "{name}"
        );
        let other = format!("op_{}", unique());
        match store
            .insert_operation(&new_op(&other, &t, "k1", "h2"), &effects)
            .await
            .unwrap()
        {
            Inserted::Existing(row) => {
                assert_eq!(row.id, id, "{name}");
                assert_eq!(row.request_hash, "h1");
            }
            Inserted::New => panic!("{name}: a key was used twice"),
        }
        // Another tenant may use the same key.
        let t2 = unique();
        assert!(matches!(
            store
                .insert_operation(&new_op(&other, &t2, "k1", "h1"), &Effects::default())
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
        let t = unique();
        let id = format!("op_{}", unique());
        let mut op = new_op(&id, &t, "k", "h");
        op.now = -10;
        op.next_run_at = Some(-10); // due before any other test's operations
        store
            .insert_operation(&op, &Effects::default())
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
            .insert_operation(&op, &Effects::default())
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
async fn tickets_and_webhooks_commit_with_the_operation_and_deliver_in_order() {
    for (name, store) in stores().await {
        let t = unique();
        let id = format!("op_{}", unique());
        store
            .insert_operation(&new_op(&id, &t, "k", "h"), &Effects::default())
            .await
            .unwrap();
        let row = store.get_operation(&t, &id).await.unwrap().unwrap();
        let ticket = format!("tk_{}", unique());
        let hook = |n: u32| OutboxWrite {
            tenant: t.clone(),
            stream: id.clone(),
            url: "http://x".into(),
            event_id: Some(format!("evt_{n}")),
            payload: format!("{n}"),
            now: 0,
        };
        let effects = Effects {
            tickets: vec![TicketWrite::Open {
                id: ticket.clone(),
                tenant: t.clone(),
                operation_id: id.clone(),
                now: 5,
                body: "{}".into(),
            }],
            outbox: vec![hook(1), hook(2)],
            audit: vec![],
        };
        let save = SaveOperation {
            id: &id,
            expected_version: row.version,
            owner: None,
            keep_lease: false,
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
            outbox: vec![hook(3)],
            audit: vec![],
        };
        let save2 = SaveOperation {
            expected_version: row.version + 1,
            ..save
        };
        assert!(
            !store.save_operation(&save2, &stale).await.unwrap(),
            "{name}"
        );
        assert_eq!(
            store.outbox_stream(&id).await.unwrap().len(),
            2,
            "{name}: rolled back"
        );

        // Deliveries of one stream come one at a time, in order.
        let mut seen = Vec::new();
        while let Some(d) = next_of(&store, &id).await {
            seen.push(d.payload.clone());
            // While the first is leased, the second is not handed out.
            assert!(next_of(&store, &id).await.is_none(), "{name}");
            store.delivered(d.id, 10).await.unwrap();
        }
        assert_eq!(seen, ["1", "2"], "{name}");
    }
}

/// The next delivery of `stream` (other tests' rows may be due too).
async fn next_of(store: &Store, stream: &str) -> Option<OutboxRow> {
    for _ in 0..100 {
        match store
            .claim_delivery(1_000_000, Duration::from_secs(30))
            .await
            .unwrap()
        {
            Some(row) if row.stream == stream => return Some(row),
            Some(other) => store.delivered(other.id, 0).await.unwrap(),
            None => return None,
        }
    }
    None
}

#[tokio::test]
async fn lists_are_paged_newest_first() {
    for (name, store) in stores().await {
        let t = unique();
        let ids: Vec<String> = (0..5).map(|i| format!("op_{}_{i}", unique())).collect();
        for (i, id) in ids.iter().enumerate() {
            let key = format!("k{i}");
            store
                .insert_operation(&new_op(id, &t, &key, "h"), &Effects::default())
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
    let mut op = new_op("op_crashed", "t", "k", "h");
    op.next_run_at = Some(1_000);
    first
        .insert_operation(&op, &Effects::default())
        .await
        .unwrap();
    let claimed = first
        .claim_operation("gone", 1_000, Duration::from_secs(3_600))
        .await
        .unwrap();
    assert_eq!(claimed.map(|r| r.id).as_deref(), Some("op_crashed"));
    // The gateway dies with its lease held for an hour; the next one takes over at once.
    first.close().await;
    let next = Store::connect(&file).await.unwrap();
    let reclaimed = next
        .claim_operation("next", 2_000, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(reclaimed.map(|r| r.id).as_deref(), Some("op_crashed"));
    next.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
