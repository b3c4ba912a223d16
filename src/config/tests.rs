use std::time::Duration;

use clap::Parser;

use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("tally").chain(args.iter().copied()))
}

#[test]
fn defaults_match_the_default_impl() {
    // Only meaningful when the test process has none of the variables set.
    let vars = [
        "TALLY_ADDR",
        "REDIS_URL",
        "TALLY_RETENTION",
        "TALLY_MAX_POINTS",
    ];
    if vars.iter().any(|v| std::env::var_os(v).is_some()) {
        return;
    }
    let cli = parse(&[]).expect("defaults parse");
    let d = Settings::default();
    assert_eq!(cli.settings.server.addr, d.server.addr);
    assert_eq!(
        cli.settings.store.retention,
        Duration::from_secs(7 * 86_400)
    );
    assert_eq!(cli.settings.store.max_points, d.store.max_points);
    assert_eq!(cli.settings.server.max_body_bytes, 1 << 20);
    assert_eq!(cli.settings.store.max_future_skew, Duration::from_secs(300));
    assert_eq!(cli.settings.redis.timeout, d.redis.timeout);
}

#[test]
fn invalid_values_are_rejected() {
    for args in [
        &["--addr", "nope"][..],
        &["--retention", "0s"],
        &["--retention", "seven days"],
        &["--max-points", "0"],
        &["--max-points", "-3"],
        &["--max-body-bytes", "abc"],
        &["--log-format", "xml"],
        &["--rate-limit-requests", "0"],
        &["--rate-limit-enabled", "maybe"],
        &["--rate-limit-fail-mode", "sideways"],
        &["--trusted-proxies", "10.0.0.0/8,not-an-ip"],
        &["--admin-tokens", "alice:short"],
        &["--admin-tokens", "no-colon-here-at-all"],
        &["--breaker-failure-rate", "1.5"],
        &["--upstream-url", "ftp://x"],
    ] {
        assert!(parse(args).is_err(), "{args:?} should be rejected");
    }
}

#[test]
fn flags_override_defaults() {
    let cli = parse(&[
        "--addr",
        "0.0.0.0:9000",
        "--retention",
        "12h",
        "--log-format",
        "json",
    ])
    .expect("valid flags");
    assert_eq!(cli.settings.server.addr.port(), 9000);
    assert_eq!(cli.settings.store.retention, Duration::from_secs(12 * 3600));
    assert_eq!(cli.settings.log.format, LogFormat::Json);
}

#[test]
fn limiter_flags() {
    let cli = parse(&[
        "--rate-limit-enabled",
        "false",
        "--trusted-proxies",
        "10.0.0.0/8, 192.168.1.7 ,::1",
        "--rate-limit-fail-mode",
        "closed",
        "--forwarded-header",
        "forwarded",
    ])
    .expect("valid flags");
    let l = cli.settings.limiter;
    assert!(!l.enabled);
    assert_eq!(l.fail_mode, FailMode::Closed);
    assert_eq!(l.trusted_proxies.0.len(), 3);
    assert_eq!(l.trusted_proxies.0[1].to_string(), "192.168.1.7/32");
    assert_eq!(l.forwarded_header, ForwardedHeader::Forwarded);
    let defaults = parse(&[]).expect("defaults").settings.limiter;
    assert_eq!(defaults.forwarded_header, ForwardedHeader::XForwardedFor);
    assert!(parse(&["--forwarded-header", "x-real-ip"]).is_err());
}

#[test]
fn each_breaker_has_its_own_policy_with_named_defaults() {
    let cli = parse(&[]).expect("defaults parse");
    let s = &cli.settings;
    // Skip when the environment sets any of them.
    if ["CIRCUIT_BREAKER", "REDIS_BREAKER", "DATABASE_BREAKER"]
        .iter()
        .any(|p| std::env::vars().any(|(k, _)| k.starts_with(p)))
    {
        return;
    }
    assert_eq!(s.breaker.config(), BreakerConfig::default());
    assert_eq!(
        s.breaker.failure_threshold,
        DEFAULT_BREAKER_FAILURE_THRESHOLD
    );
    assert_eq!(
        s.redis_breaker.failure_threshold,
        DEFAULT_REDIS_BREAKER_FAILURE_THRESHOLD
    );
    assert_eq!(
        s.redis_breaker.config().reset_timeout,
        Duration::from_secs(DEFAULT_REDIS_BREAKER_RESET_TIMEOUT_SECONDS)
    );
    assert_eq!(
        s.database_breaker.failure_threshold,
        DEFAULT_DATABASE_BREAKER_FAILURE_THRESHOLD
    );
    assert_eq!(
        s.redis_breaker.config(),
        Settings::default().redis_breaker.config()
    );

    let cli = parse(&[
        "--redis-breaker-failure-threshold",
        "4",
        "--database-breaker-reset-timeout",
        "9",
        "--breaker-min-calls",
        "3",
    ])
    .expect("breaker flags parse");
    let s = &cli.settings;
    assert_eq!(s.redis_breaker.config().failure_threshold, 4);
    assert_eq!(
        s.database_breaker.config().reset_timeout,
        Duration::from_secs(9)
    );
    assert_eq!(s.breaker.config().min_calls, 3);
    // Each flag sets its own breaker only.
    assert_eq!(
        s.breaker.failure_threshold,
        DEFAULT_BREAKER_FAILURE_THRESHOLD
    );
    assert_eq!(s.redis_breaker.min_calls, DEFAULT_BREAKER_MIN_CALLS);
    assert!(parse(&["--database-breaker-failure-rate", "1.5"]).is_err());
}

#[test]
fn tokens_name_their_operator_only_for_an_exact_match() {
    let tokens = AdminTokens(vec![
        ("alice".into(), "a-very-long-token-1".into()),
        ("bob".into(), "a-very-long-token-2".into()),
    ]);
    assert_eq!(tokens.find("a-very-long-token-2"), Some("bob"));
    assert_eq!(tokens.find("a-very-long-token-"), None);
    assert_eq!(tokens.find("a-very-long-token-22"), None);
    assert_eq!(tokens.find(""), None);
}
