#!/usr/bin/env python3
"""Bytes per point, the memory budget's count against the process' resident memory.

Usage: python3 benches/memory.py [path/to/tally]   (default target/release/tally)

For each scenario a fresh release server (with its own redis-server) takes the points over
HTTP in batches of 10,000, spread over the last six days; then the store's own count
(`tally_store_memory_bytes`) and the growth of the process' resident memory (VmRSS) are
printed per point. Resident growth includes what decoding the requests left with the
allocator; `tests/store_memory.rs` measures the store alone.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "abuse"))
import abuse  # noqa: E402  (the abuse suite's server harness)

SCENARIOS = [
    ("1,000,000 points in 10 types", 10, 100_000),
    ("100,000 types of 10 points", 100_000, 10),
]


def run(binary, types, per_type):
    tally = abuse.Tally(binary, {
        "TALLY_MAX_MEMORY": "4096MiB", "TALLY_MAX_TYPES": "1000000",
        "TALLY_MAX_POINTS": "100000000"})
    try:
        time.sleep(0.5)
        before = tally.rss_kib() * 1024
        total = types * per_type
        span = 6 * 86_400.0
        start = time.time() - span - 60
        conn = tally.connection()
        batch = []
        for i in range(total):
            batch.append({
                "timestamp": abuse.now_iso(start + span * i / total - time.time()),
                "value": 50.0 + (i * 7919 % 1000) / 10.0,
                "type": f"svc-{i % types:06d}.latency_ms",
            })
            if len(batch) == 10_000:
                status, body, _ = tally.request("POST", "/api/metrics/batch", batch, conn=conn)
                assert status == 201, (status, body[:200])
                batch = []
        time.sleep(1.5)
        after = tally.rss_kib() * 1024
        counted = tally.metric("tally_store_memory_bytes")
        stored = tally.metric("tally_store_points")
        assert stored == total, (stored, total)
        return counted / total, (after - before) / total
    finally:
        tally.stop()


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/tally"
    print(f"{'scenario':32} {'counted':>10} {'resident':>10} {'ratio':>6}")
    for name, types, per_type in SCENARIOS:
        counted, resident = run(binary, types, per_type)
        print(f"{name:32} {counted:8.1f} B {resident:8.1f} B {resident / counted:6.2f}")


if __name__ == "__main__":
    main()
