#!/usr/bin/env python3
"""End-to-end trace test: a real OTLP/HTTP receiver decodes what tally exports.

Starts an OTLP/HTTP receiver (protobuf, decoded with opentelemetry-proto), a
private redis-server and tally (the release or debug binary given as argv[1]),
sends requests through the rate limiter, the cache and the circuit breaker,
stops tally with SIGTERM (which must flush the spans), then checks the spans,
their attributes and their parent links. Exits non-zero on any failure.

    check_traces.py BINARY [--tls] [--gzip]

--tls: the receiver speaks https with a certificate signed by a CA made here with
openssl; tally trusts that CA through OTEL_EXPORTER_OTLP_CERTIFICATE only.
--gzip: tally sends with OTEL_EXPORTER_OTLP_COMPRESSION=gzip; the receiver checks
Content-Encoding and inflates.
"""
import gzip
import http.server
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

SPANS = []
ENCODINGS = []
LOCK = threading.Lock()
TOKEN = "otlp-check-token-0123456789"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        encoding = self.headers.get("content-encoding", "identity")
        if encoding == "gzip":
            body = gzip.decompress(body)
        req = trace_service_pb2.ExportTraceServiceRequest()
        req.ParseFromString(body)
        with LOCK:
            ENCODINGS.append(encoding)
            for rs in req.resource_spans:
                resource = {a.key: value(a.value) for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for s in ss.spans:
                        SPANS.append({
                            "name": s.name,
                            "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(),
                            "parent": s.parent_span_id.hex(),
                            "kind": s.kind,
                            "status": s.status.code,
                            "attrs": {a.key: value(a.value) for a in s.attributes},
                            "events": [{"name": e.name,
                                        "attrs": {a.key: value(a.value) for a in e.attributes}}
                                       for e in s.events],
                            "service": resource.get("service.name"),
                        })
        self.ack()

    def ack(self):
        out = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def call(base, path, method="GET", body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


FAILURES = []
PASSED = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    (PASSED if cond else FAILURES).append(what)


def make_certificates(work):
    """A CA and a certificate for 127.0.0.1 signed by it; the CA's and the server's paths."""
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    ca_key, ca, key, csr, cert = (os.path.join(work, n) for n in
                                  ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
            "-days", "1", "-subj", "/CN=tally test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", "/CN=127.0.0.1")
    ext = os.path.join(work, "server.ext")
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n"
                "extendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
            "-out", cert, "-days", "1", "-extfile", ext)
    return ca, cert, key


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    tls, compress = "--tls" in sys.argv, "--gzip" in sys.argv
    binary = args[0] if args else "target/debug/tally"
    work = tempfile.mkdtemp()
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Receiver)
    scheme = "http"
    extra = {}
    if tls:
        ca, cert, key = make_certificates(work)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        receiver.socket = context.wrap_socket(receiver.socket, server_side=True)
        scheme = "https"
        extra["OTEL_EXPORTER_OTLP_CERTIFICATE"] = ca
    if compress:
        extra["OTEL_EXPORTER_OTLP_COMPRESSION"] = "gzip"
    print(f"== receiver {scheme}, compression {'gzip' if compress else 'none'}")
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    redis_port, app_port = free_port(), free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", work], stdout=subprocess.DEVNULL)
    env = dict(os.environ,
               TALLY_ADDR=f"127.0.0.1:{app_port}",
               REDIS_URL=f"redis://127.0.0.1:{redis_port}",
               OTEL_EXPORTER_OTLP_ENDPOINT=f"{scheme}://127.0.0.1:{receiver.server_port}",
               OTEL_SERVICE_NAME="tally-under-test",
               ADMIN_TOKENS=f"ops:{TOKEN}",
               EXTERNAL_SERVICE_FAILURE_RATE="0",
               LOG_FORMAT="json",
               RUST_LOG="warn",
               **extra)
    app = subprocess.Popen([binary], env=env, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{app_port}"
    try:
        # Ready, and connected to Redis (so the limiter decides in Redis).
        for _ in range(200):
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as resp:
                    if json.load(resp).get("redis_connected"):
                        break
            except OSError:
                pass
            time.sleep(0.1)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
        check(call(base, "/api/metrics", "POST", {"timestamp": now, "value": 1, "type": "cpu"},
                   {"traceparent": traceparent}) == 201, "ingest answered 201")
        check(call(base, "/api/metrics/summary?type=cpu") == 200, "summary (miss) answered 200")
        check(call(base, "/api/metrics/summary?type=cpu") == 200, "summary (hit) answered 200")
        check(call(base, "/api/external") == 200, "external answered 200")
        auth = {"authorization": f"Bearer {TOKEN}"}
        check(call(base, "/admin/breakers/upstream", "POST", {"action": "force_open"}, auth) == 200,
              "breaker forced open")
        check(call(base, "/api/external") == 503, "external answered 503 while open")
        check(call(base, "/no/such/route") == 404, "unknown route answered 404")
    finally:
        app.send_signal(signal.SIGTERM)
        try:
            _, err = app.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            app.kill()
            _, err = app.communicate()
        redis.terminate()
        redis.wait()
    time.sleep(0.5)
    receiver.shutdown()

    with LOCK:
        spans = list(SPANS)
    by_id = {s["span_id"]: s for s in spans}
    servers = [s for s in spans if s["kind"] == 2]

    def server(name):
        return [s for s in servers if s["name"] == name]

    def children(span, name):
        return [s for s in spans if s["parent"] == span["span_id"] and s["name"] == name]

    with LOCK:
        encodings = list(ENCODINGS)
    check(len(encodings) > 0, f"spans arrived over {scheme} ({len(encodings)} export requests)")
    if compress:
        check(all(e == "gzip" for e in encodings), f"every export request gzip-encoded ({encodings})")
    check(all(s["service"] == "tally-under-test" for s in spans), "service.name from OTEL_SERVICE_NAME")
    ingest = server("POST /api/metrics")
    check(len(ingest) == 1, "one server span 'POST /api/metrics'")
    if ingest:
        s = ingest[0]
        check(s["trace_id"] == TRACE_ID and s["parent"] == PARENT_ID, "incoming traceparent continued")
        a = s["attrs"]
        check(a.get("http.request.method") == "POST" and a.get("http.route") == "/api/metrics"
              and a.get("http.response.status_code") == 201, "HTTP semantic attributes on ingest")
        check(s["status"] != 2, "no error status on a 201")
        rl = [e["attrs"] for e in s["events"] if e["name"] == "rate_limit"]
        check(len(rl) == 1 and rl[0].get("rate_limit.policy") == "write"
              and rl[0].get("rate_limit.decision") == "allowed" and rl[0].get("rate_limit.backend") == "redis"
              and "rate_limit.remaining" in rl[0], "rate_limit event with policy, decision, backend, remaining")

    summaries = server("GET /api/metrics/summary")
    check(len(summaries) == 2, "two summary server spans")
    results = []
    for s in summaries:
        lookups = children(s, "cache.lookup")
        if lookups:
            results.append(lookups[0]["attrs"].get("cache.result"))
            stores = children(lookups[0], "store.summarize")
            if lookups[0]["attrs"].get("cache.result") == "miss":
                check(len(stores) == 1, "store.summarize under the missing cache.lookup")
    check(sorted(results) == ["hit", "miss"], f"cache.lookup results miss then hit ({results})")

    externals = server("GET /api/external")
    check(len(externals) == 2, "two external server spans")
    ok = [s for s in externals if s["attrs"].get("http.response.status_code") == 200]
    shut = [s for s in externals if s["attrs"].get("http.response.status_code") == 503]
    if ok:
        calls = children(ok[0], "upstream.call")
        check(len(calls) == 1 and calls[0]["kind"] == 3 and calls[0]["attrs"].get("breaker.permit") == "granted"
              and calls[0]["attrs"].get("breaker.state") == "closed", "upstream.call client span, permit granted")
        if calls:
            sim = [s for s in servers if s["name"] == "GET /simulator/data" and s["parent"] == calls[0]["span_id"]]
            check(len(sim) == 1 and sim[0]["trace_id"] == ok[0]["trace_id"],
                  "the upstream continued the trace (traceparent carried)")
    if shut:
        calls = children(shut[0], "upstream.call")
        check(len(calls) == 1 and calls[0]["attrs"].get("breaker.permit") == "rejected",
              "upstream.call on the open breaker: permit rejected")
        check(shut[0]["status"] == 2, "error status on the 503")
    # Logs: a line written inside a request carries that request's trace id.
    lines = []
    for raw in err.decode(errors="replace").splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            pass
    admin = server("POST /admin/breakers/{name}")
    check(len(admin) == 1 and admin[0]["attrs"].get("http.route") == "/admin/breakers/{name}",
          "a path parameter's route reads as documented: /admin/breakers/{name}")
    forced = [l for l in lines if l.get("event") == "breaker_transition" and l.get("to") == "forced_open"]
    if os.environ.get("VERBOSE"):
        print(admin, forced, err.decode(errors="replace")[:3000])
    check(len(admin) == 1 and len(forced) == 1 and forced[0].get("trace_id") == admin[0]["trace_id"],
          "the breaker-transition log line carries the admin request's trace id")
    check(all("trace_id" not in l for l in lines if l.get("message") == "listening"),
          "no trace id on a line outside requests")
    lost = server("GET unmatched")
    check(len(lost) == 1 and lost[0]["status"] != 2, "404 span named by template 'unmatched', not an error")
    check(all(s["parent"] in by_id or s["parent"] in ("", PARENT_ID) for s in spans), "every parent link resolves")

    if FAILURES or os.environ.get("VERBOSE"):
        for s in spans:
            print("  span", s["name"], s["kind"], s["status"], s["span_id"], "<-", s["parent"], s["attrs"])
    print(f"{len(spans)} spans received")
    print(f"traces: {len(PASSED)} passed, {len(FAILURES)} failed")
    sys.exit(1 if FAILURES else 0)


class Sink(Receiver):
    """For benchmarks: acknowledges without decoding (the receiver's own CPU
    should not be what the benchmark measures)."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.ack()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--sink":
        # `check_traces.py --sink PORT`: a receiver that only acknowledges.
        http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Sink).serve_forever()
    else:
        main()
