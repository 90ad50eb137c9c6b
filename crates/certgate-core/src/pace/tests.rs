//! One account's pace on a clock moved by hand: admissions, the line of waiting operations,
//! the shared store's part, and what throttling teaches.

use super::*;
use crate::config::RateLimit;
use std::time::Duration;

/// The tests' now.
const T: i64 = 1_700_000_000_000;

fn pace(limits: &[(u32, u64)]) -> Pace {
    let limits: Vec<RateLimit> = limits
        .iter()
        .map(|(requests, per_ms)| RateLimit {
            requests: *requests,
            per_ms: *per_ms,
        })
        .collect();
    Pace::new(&limits)
}

/// `op`'s single call at `now`, on one gateway.
fn admit(p: &mut Pace, op: &str, now: i64) -> Admission {
    match p.admit(op, 1, None, false, now) {
        Step::Decided(a) => a,
        Step::Ask { .. } => panic!("asked the store"),
    }
}

fn later(ms: u64) -> Admission {
    Admission::Later(Duration::from_millis(ms))
}

#[test]
fn calls_go_at_the_limit_and_the_waiting_are_told_their_turn() {
    // 2 a minute, padded to 61.2 s.
    let mut p = pace(&[(2, 60_000)]);
    assert_eq!(admit(&mut p, "op1", T), Admission::Now(T));
    assert_eq!(admit(&mut p, "op2", T), Admission::Now(T));
    // op4 waits behind op3 in the same window; op5 a window later.
    assert_eq!(admit(&mut p, "op3", T), later(61_200));
    assert_eq!(admit(&mut p, "op4", T), later(61_200));
    assert_eq!(admit(&mut p, "op5", T), later(122_400));
    let stats = p.stats(T + 1_000);
    assert_eq!((stats.sent, stats.waiting), (2, 3));
    assert_eq!(stats.oldest_wait, Duration::from_secs(1));
    // Back early: the rest of its wait, its place kept.
    assert_eq!(admit(&mut p, "op3", T + 1_000), later(60_200));
    // At their time, op3 and op4 go; op5 still waits for its own.
    assert_eq!(admit(&mut p, "op3", T + 61_200), Admission::Now(T + 61_200));
    assert_eq!(admit(&mut p, "op4", T + 61_200), Admission::Now(T + 61_200));
    assert_eq!(admit(&mut p, "op5", T + 61_200), later(61_200));
    let stats = p.stats(T + 61_200);
    assert_eq!((stats.sent, stats.waiting), (4, 1));
    assert_eq!(stats.oldest_wait, Duration::from_millis(61_200));
}

#[test]
fn an_operations_later_calls_keep_its_place_in_line() {
    // 1 a second, padded to 1.05 s.
    let mut p = pace(&[(1, 1_000)]);
    assert_eq!(admit(&mut p, "a", T), Admission::Now(T));
    assert_eq!(admit(&mut p, "b", T + 5), later(1_045));
    // a's second call is not behind b, who came after a's first.
    assert_eq!(admit(&mut p, "a", T + 10), later(1_040));
    // c is behind both.
    assert_eq!(admit(&mut p, "c", T + 20), later(3_130));
}

#[test]
fn a_waiter_that_does_not_come_back_is_forgotten() {
    let mut p = pace(&[(1, 1_000)]);
    admit(&mut p, "a", T);
    assert_eq!(admit(&mut p, "b", T), later(1_050));
    assert_eq!(admit(&mut p, "c", T), later(2_100));
    assert_eq!(p.stats(T).waiting, 2);
    // b was due at T + 1,050; a second later it no longer waits.
    assert_eq!(admit(&mut p, "c", T + 2_049), later(51));
    assert_eq!(p.stats(T + 2_049).waiting, 2);
    assert_eq!(admit(&mut p, "c", T + 2_050), later(50));
    assert_eq!(p.stats(T + 2_050).waiting, 1);
    assert_eq!(admit(&mut p, "c", T + 2_100), Admission::Now(T + 2_100));
    assert_eq!(p.stats(T + 2_100).waiting, 0);
}

#[test]
fn an_admission_replaced_is_recorded_anew() {
    let mut p = pace(&[(2, 60_000)]);
    assert_eq!(admit(&mut p, "a", T), Admission::Now(T));
    let again = p.admit("a", 1, Some(T), false, T + 100);
    assert_eq!(again, Step::Decided(Admission::Now(T + 100)));
    assert_eq!(p.stats(T + 100).sent, 1);
    // The slot at T is free: one more call fits, then the window is full until T + 100 leaves.
    assert_eq!(admit(&mut p, "b", T + 100), Admission::Now(T + 100));
    assert_eq!(admit(&mut p, "c", T + 100), later(61_200));
    // Several calls at once are all given back.
    let mut p = pace(&[(2, 60_000)]);
    assert_eq!(
        p.admit("a", 2, None, false, T),
        Step::Decided(Admission::Now(T))
    );
    assert_eq!(
        p.admit("a", 2, Some(T), false, T + 50),
        Step::Decided(Admission::Now(T + 50))
    );
    assert_eq!(p.stats(T + 50).sent, 2);
}

#[test]
fn a_shared_store_is_asked_only_when_this_gateway_would_let_the_calls_go() {
    let mut p = pace(&[(2, 60_000)]);
    let windows = p.windows();
    assert_eq!(
        p.admit("a", 1, None, true, T),
        Step::Ask {
            windows: windows.clone(),
            ahead: 0
        }
    );
    // The store's clock decides the instant.
    assert_eq!(p.asked("a", 1, T + 3, Admit::Now), Admission::Now(T + 3));
    // Another gateway filled the window: told by the store to wait.
    assert!(matches!(
        p.admit("b", 1, None, true, T + 5),
        Step::Ask { .. }
    ));
    assert_eq!(p.asked("b", 1, T + 6, Admit::At(T + 1_006)), later(1_000));
    // c is behind b.
    assert_eq!(
        p.admit("c", 1, None, true, T + 10),
        Step::Ask { windows, ahead: 1 }
    );
    p.asked("c", 1, T + 10, Admit::Now);
    // This gateway's own sends fill the window: "not yet" without asking...
    assert_eq!(
        p.admit("d", 1, None, true, T + 20),
        Step::Decided(later(61_190))
    );
    // ...unless an admission is given back: the store must hear of it, even when this
    // gateway's sends still say "not yet" without it.
    assert_eq!(p.asked("e", 1, T + 25, Admit::Now), Admission::Now(T + 25));
    assert!(matches!(
        p.admit("c", 1, Some(T + 10), true, T + 30),
        Step::Ask { .. }
    ));
    // No limit, declared or learnt: nothing to share.
    let mut free = pace(&[]);
    assert_eq!(
        free.admit("a", 1, None, true, T),
        Step::Decided(Admission::Now(T))
    );
}

#[test]
fn throttling_pauses_probes_learns_a_limit_and_recovers() {
    let mut p = pace(&[(100, 1_000)]);
    for i in 0..8 {
        assert_eq!(admit(&mut p, &format!("burst{i}"), T), Admission::Now(T));
    }
    // Retry-After pauses every call of the account.
    let retry = Some(Duration::from_millis(300));
    assert_eq!(p.throttled(retry, T), Duration::from_millis(300));
    assert_eq!(admit(&mut p, "op2", T), later(300));
    // Half the last second's calls: 4 a second.
    assert_eq!(p.stats(T).learnt, Some(4.0));
    // One probe goes; the others wait for its answer.
    let t = T + 1_100;
    assert_eq!(admit(&mut p, "op2", t), Admission::Now(t));
    assert_eq!(admit(&mut p, "op3", t), later(250));
    // The probe is throttled too: the spell goes on, the limit is not halved again, and the
    // next probe waits half as long again.
    assert_eq!(p.throttled(None, t), Duration::from_millis(375));
    assert_eq!(p.stats(t).learnt, Some(4.0));
    assert_eq!(admit(&mut p, "op3", t + 374), later(1));
    assert_eq!(admit(&mut p, "op3", t + 375), Admission::Now(t + 375));
    p.answered();
    // The spell is over: calls go again within the learnt limit, which grows back.
    let t = t + 375;
    assert_eq!(admit(&mut p, "op4", t), Admission::Now(t));
    for _ in 0..4 {
        p.answered();
    }
    let grown = p.stats(t).learnt.unwrap();
    assert!(grown > 5.0 && grown < 5.2, "{grown}");
    assert_eq!(p.stats(t).throttled, 2);
    // 5 a second: 3 sent in the last second, 2 more go, the next when the first leaves.
    assert_eq!(admit(&mut p, "op5", t), Admission::Now(t));
    assert_eq!(admit(&mut p, "op6", t), Admission::Now(t));
    assert_eq!(admit(&mut p, "op7", t), later(625));
}

#[test]
fn an_account_without_limits_learns_one_from_throttling() {
    let mut p = pace(&[]);
    for i in 0..3 {
        assert_eq!(admit(&mut p, &format!("op{i}"), T), Admission::Now(T));
    }
    assert_eq!(p.throttled(Some(Duration::ZERO), T), Duration::ZERO);
    // Learnt: 3 calls in the last second, halved: the next call waits for the second to pass.
    assert_eq!(p.learning().learnt(), Some(1.5));
    assert_eq!(admit(&mut p, "next", T), later(1_000));
}

#[test]
fn the_learnt_limit_counts_only_the_last_seconds_calls() {
    let mut p = pace(&[(100, 60_000)]);
    for i in 0..6 {
        admit(&mut p, &format!("old{i}"), T);
    }
    for i in 0..4 {
        admit(&mut p, &format!("new{i}"), T + 1_500);
    }
    // The calls at T are more than a second old: 4 recent, 2 a second.
    p.throttled(Some(Duration::ZERO), T + 1_600);
    assert_eq!(p.learning().learnt(), Some(2.0));
}
