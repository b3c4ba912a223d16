//! The lease table on a paused clock.

use std::net::IpAddr;

use super::*;

const DURATION: Duration = Duration::from_millis(500);

fn policy(limit: u64) -> Policy {
    Policy {
        name: PolicyName::Read,
        limit,
        window: Duration::from_secs(60),
    }
}

fn client(s: &str) -> ClientKey {
    ClientKey::of(s.parse::<IpAddr>().expect("ip"))
}

fn leases() -> Leases {
    Leases::new(DURATION, Duration::from_millis(50))
}

fn ask(take: Take) -> (u32, Option<GiveBack>) {
    match take {
        Take::Ask { lease, give_back } => (lease, give_back),
        Take::Leased(v) => panic!("served from a lease: {v:?}"),
    }
}

fn grant(slots: u32, free: u64) -> Option<Grant> {
    Some(Grant {
        slots,
        stamp: 1_000,
        free,
        reset: Duration::from_secs(60),
    })
}

#[tokio::test(start_paused = true)]
async fn a_grant_serves_its_slots_then_the_script_is_asked_again() {
    let l = leases();
    let (p, c) = (policy(1_000_000), client("10.0.0.1"));
    assert_eq!(ask(l.take(&p, c)), (2, None), "twice the demand of one");
    l.settle(p.name, c, grant(3, 500), Instant::now());
    let remaining: Vec<u64> = (0..3)
        .map(|_| match l.take(&p, c) {
            Take::Leased(v) => {
                assert!(v.allowed);
                v.remaining
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        remaining,
        [502, 501, 500],
        "counts down to what Redis has free"
    );
    // Used up: ask for twice what was asked since the grant, nothing to give back.
    assert_eq!(ask(l.take(&p, c)), (8, None));
}

#[tokio::test(start_paused = true)]
async fn one_ask_at_a_time_per_client_and_a_lost_one_expires() {
    let l = leases();
    let (p, c) = (policy(1_000_000), client("10.0.0.1"));
    assert_eq!(ask(l.take(&p, c)).0, 2);
    assert_eq!(ask(l.take(&p, c)), (0, None), "an ask is pending");
    assert_eq!(
        ask(l.take(&p, client("10.0.0.2"))).0,
        2,
        "another client asks"
    );
    // No answer within twice the call timeout: the ask is taken as lost.
    tokio::time::advance(Duration::from_millis(100)).await;
    assert_eq!(ask(l.take(&p, c)).0, 6);
}

#[tokio::test(start_paused = true)]
async fn an_ended_lease_gives_back_what_it_did_not_use_once() {
    let l = leases();
    let (p, c) = (policy(1_000_000), client("10.0.0.1"));
    ask(l.take(&p, c));
    l.settle(p.name, c, grant(10, 0), Instant::now());
    assert!(matches!(l.take(&p, c), Take::Leased(_)));
    tokio::time::advance(DURATION).await;
    let back = GiveBack {
        stamp: 1_000,
        size: 10,
        unused: 9,
    };
    assert_eq!(ask(l.take(&p, c)), (4, Some(back)), "sized by the one used");
    l.settle(p.name, c, None, Instant::now());
    assert_eq!(ask(l.take(&p, c)), (6, None), "given back once");
}

#[tokio::test(start_paused = true)]
async fn a_lease_replaced_by_a_late_grant_is_still_given_back() {
    let l = leases();
    let (p, c) = (policy(1_000_000), client("10.0.0.1"));
    ask(l.take(&p, c));
    // No answer in time: the ask is taken as lost and a second one goes out.
    tokio::time::advance(Duration::from_millis(100)).await;
    ask(l.take(&p, c));
    // The first call's answer arrives late, then the second's.
    l.settle(p.name, c, grant(10, 0), Instant::now());
    assert!(matches!(l.take(&p, c), Take::Leased(_)));
    l.settle(p.name, c, grant(5, 0), Instant::now());
    for _ in 0..5 {
        assert!(matches!(l.take(&p, c), Take::Leased(_)));
    }
    // The first lease's 9 unused slots go back with the next ask.
    let (_, back) = ask(l.take(&p, c));
    assert_eq!(back.map(|b| (b.size, b.unused)), Some((10, 9)));
}

#[tokio::test(start_paused = true)]
async fn the_lease_ends_one_duration_after_its_call_was_sent() {
    let l = leases();
    let (p, c) = (policy(1_000_000), client("10.0.0.1"));
    let sent = Instant::now();
    ask(l.take(&p, c));
    tokio::time::advance(Duration::from_millis(40)).await;
    l.settle(p.name, c, grant(100, 0), sent);
    tokio::time::advance(DURATION - Duration::from_millis(41)).await;
    assert!(matches!(l.take(&p, c), Take::Leased(_)));
    tokio::time::advance(Duration::from_millis(1)).await;
    assert!(
        matches!(l.take(&p, c), Take::Ask { .. }),
        "ended at sent + duration"
    );
}

#[tokio::test(start_paused = true)]
async fn sizes_are_capped_by_the_limit_and_the_maximum() {
    let l = leases();
    let small = policy(10_000);
    let c = client("10.0.0.1");
    for _ in 0..50 {
        tokio::time::advance(Duration::from_millis(200)).await;
        let (lease, _) = ask(l.take(&small, c));
        assert!(lease <= 10, "a thousandth of the limit");
    }
    let big = Policy {
        name: PolicyName::Write,
        ..policy(u64::MAX)
    };
    for _ in 0..2_000 {
        l.take(&big, c);
    }
    tokio::time::advance(Duration::from_millis(200)).await;
    assert_eq!(ask(l.take(&big, c)).0, LEASE_MAX);
}

#[tokio::test(start_paused = true)]
async fn small_limits_and_a_zero_duration_never_lease() {
    let c = client("10.0.0.1");
    assert_eq!(leases().take(&policy(LIMIT_SHARE - 1), c), PLAIN);
    let off = Leases::new(Duration::ZERO, Duration::from_millis(50));
    assert_eq!(off.take(&policy(1_000_000), c), PLAIN);
    assert!(
        off.shards.iter().all(|s| s.lock().is_empty()),
        "nothing tracked"
    );
}

#[tokio::test(start_paused = true)]
async fn tracked_clients_are_bounded() {
    let l = leases();
    let p = policy(1_000_000);
    for i in 0..(SHARDS * MAX_CLIENTS_PER_SHARD + 1_000) as u32 {
        l.take(&p, ClientKey::of(IpAddr::from(i.to_be_bytes())));
    }
    let tracked: usize = l.shards.iter().map(|s| s.lock().len()).sum();
    assert!(tracked <= SHARDS * MAX_CLIENTS_PER_SHARD);
}
