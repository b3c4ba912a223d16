//! What the store holds, per type and in all: the list of types with their counts and
//! newest timestamps, and the number of points. Read from the day rollups plus the
//! waiting partials in one statement (a fold is seen whole or not at all) once rollups
//! cover every row, from the raw rows before.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::PgPool;

use super::rollup;

/// Per type (in byte order, as the embedded store sorts): points and newest timestamp.
pub type Listing = BTreeMap<String, (u64, i64)>;

/// The first `limit` types after `after`: from the rollups when they cover every row
/// (`covered`), else from the rows.
pub async fn page(
    pool: &PgPool,
    covered: bool,
    after: Option<&str>,
    limit: usize,
) -> Result<Listing, sqlx::Error> {
    if covered {
        from_rollups(pool, after, limit).await
    } else {
        from_rows(pool, after, limit).await
    }
}

/// The first `limit` types after `after`, from the rollups.
async fn from_rollups(
    pool: &PgPool,
    after: Option<&str>,
    limit: usize,
) -> Result<Listing, sqlx::Error> {
    let mut rows = sqlx::query_as::<
        _,
        (
            Option<String>,
            Option<i64>,
            Option<DateTime<Utc>>,
            Option<Vec<u8>>,
        ),
    >(
        "(SELECT type, sum(count)::int8, max(last_ts), NULL::bytea FROM rollup_day \
           WHERE $1::text IS NULL OR type COLLATE \"C\" > $1::text \
           GROUP BY type ORDER BY type COLLATE \"C\" LIMIT $2) \
         UNION ALL SELECT NULL, NULL, NULL, partials FROM rollup_delta",
    )
    .bind(after)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch(pool);
    let mut listing = Listing::new();
    let mut partials = Vec::new();
    while let Some(row) = rows.try_next().await? {
        match row {
            (Some(ty), Some(count), Some(last), None) => {
                add(&mut listing, ty, count.max(0) as u64, rollup::micros(last));
            }
            (None, None, None, Some(packed)) => {
                partials.clear();
                let wanted = |ty: &str, _| after.is_none_or(|a| ty.as_bytes() > a.as_bytes());
                rollup::unpack(&packed, wanted, &mut partials)
                    .map_err(|e| sqlx::Error::Decode(e.to_string().into()))?;
                for p in partials.drain(..) {
                    add(&mut listing, p.ty, p.agg.count, p.agg.last_ts);
                }
            }
            _ => {
                return Err(sqlx::Error::Decode(
                    "a listing row with missing columns".into(),
                ));
            }
        }
    }
    // A type only in partials may sort before the last of the page: the page is the
    // first `limit` of both.
    while listing.len() > limit {
        listing.pop_last();
    }
    Ok(listing)
}

/// The same from the raw rows.
async fn from_rows(
    pool: &PgPool,
    after: Option<&str>,
    limit: usize,
) -> Result<Listing, sqlx::Error> {
    let rows = sqlx::query_as::<_, (String, i64, DateTime<Utc>)>(
        "SELECT type, count(*)::int8, max(ts) FROM metrics \
         WHERE $1::text IS NULL OR type COLLATE \"C\" > $1::text \
         GROUP BY type ORDER BY type COLLATE \"C\" LIMIT $2",
    )
    .bind(after)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    let mut listing = Listing::new();
    for (ty, count, last) in rows {
        add(&mut listing, ty, count.max(0) as u64, rollup::micros(last));
    }
    Ok(listing)
}

fn add(listing: &mut Listing, ty: String, count: u64, last: i64) {
    let entry = listing.entry(ty).or_insert((0, i64::MIN));
    entry.0 += count;
    entry.1 = entry.1.max(last);
}

/// Points stored: from the rollups when they cover every row, else from the rows.
pub async fn points(pool: &PgPool, covered: bool) -> Result<u64, sqlx::Error> {
    if !covered {
        let (count,): (i64,) = sqlx::query_as("SELECT count(*)::int8 FROM metrics")
            .fetch_one(pool)
            .await?;
        return Ok(count.max(0) as u64);
    }
    let listing = from_rollups(pool, None, usize::MAX).await?;
    Ok(listing.values().map(|(count, _)| count).sum())
}
