"""Schemathesis hooks: generated data follows the rules no schema can state.

One `before_call` hook, so every phase (the coverage phase too, which map_* hooks do not
reach) sends what it meant to: a valid request stays valid, an invalid one stays invalid
(schemathesis revalidates a case after the hook).

- A metric's timestamp must lie within the retention and not ahead of the server clock: a
  valid RFC 3339 date-time is moved into the last hour. One that is not valid (a negative
  case) is left alone.
- A series `step` that the spec's pattern accepts (any compact duration) is replaced by one
  of the steps every period allows (a divisor of a minute or whole minutes, at most
  SERIES_MAX_POINTS steps over the period: the rule depends on `period`, so no pattern
  can state it). One that does not match (a negative case) is left alone.
- An `Idempotency-Key` belongs to one request: a valid key (the coverage phase reuses its
  boundary values across bodies) gets a unique suffix, so no key meets two bodies.
"""
import datetime
import itertools
import re

import schemathesis

_counter = itertools.count()
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)


def _is_date_time(value):
    """RFC 3339 date-time, leap second included."""
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        return False
    normal = value.upper().replace(":60", ":59", 1) if value[17:19] == "60" else value.upper()
    try:
        datetime.datetime.fromisoformat(normal.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _recent(value):
    if not _is_date_time(value):
        return value
    offset = datetime.timedelta(seconds=next(_counter) % 3600)
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1) - offset
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fix_metric(item):
    if isinstance(item, dict) and "timestamp" in item:
        item["timestamp"] = _recent(item["timestamp"])


# The key as the spec's pattern and the server's parser accept it.
_KEY = re.compile(r'^([!#-\[\]-~]{1,255}|"[!#-\[\]-~]{1,255}")$')


def _unique_key(headers):
    key = headers.get("Idempotency-Key")
    if not isinstance(key, str) or not _KEY.match(key):
        return
    bare = key[1:-1] if key[0] == '"' else key
    suffix = f"-{next(_counter)}"
    headers["Idempotency-Key"] = bare[: 255 - len(suffix)] + suffix


# Steps no period refuses: the default retention (7 days) is 336 steps of 30 minutes.
_STEPS = ["30m", "1h", "6h", "1d", "7d"]
_STEP = re.compile(r"^([0-9]{1,9}[a-zA-Zµ]+)+$")


def _fix_step(query):
    step = query.get("step") if isinstance(query, dict) else None
    if isinstance(step, str) and _STEP.match(step) and any(c in "123456789" for c in step):
        query["step"] = _STEPS[next(_counter) % len(_STEPS)]


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.path == "/api/metrics/series":
        _fix_step(case.query)
    if case.path == "/api/metrics" and case.method.upper() == "POST":
        _fix_metric(case.body)
    elif case.path == "/api/metrics/batch" and isinstance(case.body, list):
        for item in case.body:
            _fix_metric(item)
    if case.headers:
        _unique_key(case.headers)
