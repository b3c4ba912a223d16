//! Value parsers for the settings: each turns one flag or variable into a
//! typed value or a one-line reason.

use std::time::Duration;

use super::{AdminTokens, MIN_ADMIN_TOKEN_LEN, TrustedProxies};
use crate::domain::parse_duration;

pub(super) fn parse_tokens(raw: &str) -> Result<AdminTokens, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (name, token) = pair
                .split_once(':')
                .ok_or_else(|| "each entry must be name:token".to_string())?;
            let name = name.trim();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            {
                return Err("token names must be letters, digits, '_', '.' or '-'".into());
            }
            if token.len() < MIN_ADMIN_TOKEN_LEN {
                return Err(format!(
                    "the token of '{name}' is shorter than {MIN_ADMIN_TOKEN_LEN} characters"
                ));
            }
            Ok((name.to_owned(), token.to_owned()))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(AdminTokens)
}

pub(super) fn parse_ratio(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err("must be a number between 0 and 1".into()),
    }
}

pub(super) fn parse_http_url(raw: &str) -> Result<String, String> {
    if !raw.starts_with("http://") || raw.len() <= "http://".len() {
        return Err("must be an http:// URL (TLS is not compiled in)".into());
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

pub(super) fn parse_cidrs(raw: &str) -> Result<TrustedProxies, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("'{s}' is not an IP address or CIDR"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(TrustedProxies)
}

pub(super) fn parse_positive_duration(raw: &str) -> Result<Duration, String> {
    match parse_duration(raw)? {
        d if d.is_zero() => Err("must be greater than zero".into()),
        d => Ok(d),
    }
}

pub(super) fn default_duration(raw: &str) -> Duration {
    humantime::parse_duration(raw).unwrap_or_default()
}

/// A size in bytes: `268435456`, `256MiB`, `1GiB`, `500MB` (binary and decimal units), at
/// least 1 MiB.
pub(super) fn parse_size(raw: &str) -> Result<u64, String> {
    let size: bytesize::ByteSize = raw.trim().parse().map_err(|_| {
        format!(
            "'{}' is not a size such as 256MiB or 1GiB",
            raw.escape_default()
        )
    })?;
    if size.as_u64() < MIN_SIZE {
        return Err("must be at least 1MiB".into());
    }
    Ok(size.as_u64())
}

const MIN_SIZE: u64 = 1 << 20;

pub(super) fn default_size(raw: &str) -> u64 {
    parse_size(raw).unwrap_or(u64::MAX)
}

/// A PostgreSQL URL: `postgres://` or `postgresql://` and nothing else (another database's
/// URL would otherwise be tried as PostgreSQL, on its default port, forever).
pub(super) fn parse_database_url(raw: &str) -> Result<String, String> {
    let scheme = raw.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("postgres" | "postgresql") => {}
        _ => return Err("must be a postgres:// or postgresql:// URL".into()),
    }
    raw.parse::<sqlx::postgres::PgConnectOptions>()
        .map(|_| raw.to_owned())
        .map_err(|e| format!("not a PostgreSQL URL: {e}"))
}

/// `scheme://user:password@host…` with the password replaced by `***`.
pub(super) fn redact_password(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return raw.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => raw.to_owned(),
    }
}

/// URL schemes of the Redis topologies: one server, a Redis Cluster, or a primary found
/// through Sentinel, each plain or over TLS (`rediss…`).
pub const REDIS_SCHEMES: [&str; 6] = [
    "redis",
    "rediss",
    "redis-cluster",
    "rediss-cluster",
    "redis-sentinel",
    "rediss-sentinel",
];

/// A Redis URL, checked at configuration time by the client's own parser.
pub fn parse_redis_url(raw: &str) -> Result<String, String> {
    let scheme = raw.split_once("://").map(|(scheme, _)| scheme);
    if !scheme.is_some_and(|s| REDIS_SCHEMES.contains(&s)) {
        return Err(format!(
            "must start with one of {}",
            REDIS_SCHEMES.map(|s| format!("{s}://")).join(", ")
        ));
    }
    fred::prelude::Config::from_url(raw)
        .map(|_| raw.to_owned())
        .map_err(|e| format!("invalid Redis URL: {}", e.details()))
}
