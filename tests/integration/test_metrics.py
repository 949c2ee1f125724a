#!/usr/bin/env python3
"""The metrics listener (issue 14): every status code as curl sees it, a real Prometheus
server scraping ackd, the page against the exit summary, /healthz during
--shutdown-delay and while a worker is stopped, and ackd(8)'s METRICS section against
the page.

What the slow and malicious metrics clients do to the ack path is measured in
test_metrics_load.py, which must not run beside other tests.
"""
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import tap
from ackdtest import SOURCE_ROOT, TIMEOUT_SCALE, AckdTestCase, free_port, recv_all, recv_exactly, wait_until

PROMETHEUS = "/usr/bin/prometheus"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# metrics-server.h: METRICS_REQUEST_TIMEOUT_MS
REQUEST_TIMEOUT = 5.0
# http-request.h: HTTP_REQUEST_HEAD_MAX
HEAD_MAX = 8192


def need(test, program, package):
    if not shutil.which(program):
        test.skipTest(f"{program} not installed (package {package})")


def parse_response(raw):
    """(status, {header: value}, body) of one HTTP response as curl -si prints it."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def families(page):
    """{family: type} from the page's # TYPE lines."""
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", page, re.M))


def samples(page, name):
    """[(labels text, value)] of every sample of one metric."""
    return [(m.group(1) or "", float(m.group(2)))
            for m in re.finditer(r"^" + re.escape(name) + r"(\{[^}]*\})? (\S+)$", page, re.M)]


class MetricsCase(AckdTestCase):
    def start_metrics(self, *extra):
        """ackd with a line listener (0) and a metrics listener (1)."""
        d = self.start("-l", "line@127.0.0.1:0", "-l", "metrics@127.0.0.1:0", "-t", "2", *extra)
        self.assertEqual([m for _, m in d.listeners], ["line", "metrics"])
        return d

    def url(self, d, path):
        return f"http://127.0.0.1:{d.port(1)}{path}"

    def curl(self, *args, timeout=10):
        r = subprocess.run(["curl", "-sS", "--max-time", str(timeout), *args], capture_output=True,
                           timeout=timeout + 5)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        return r.stdout

    def get(self, d, path, *args):
        return parse_response(self.curl("-i", *args, self.url(d, path)))

    def acks(self, d, n):
        """n line messages on one connection, all acknowledged."""
        s = d.connect(0)
        s.sendall(b"m\n" * n)
        self.assertEqual(recv_exactly(s, 5 * n), b"ACK!\n" * n)
        s.close()


class HttpTests(MetricsCase):
    def setUp(self):
        need(self, "curl", "curl")
        self.d = self.start_metrics()

    def test_get_metrics_is_200_in_text_format_0_0_4(self):
        self.acks(self.d, 3)
        status, headers, body = self.get(self.d, "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], CONTENT_TYPE)
        self.assertEqual(int(headers["content-length"]), len(body))
        self.assertEqual(headers["connection"], "keep-alive")
        page = body.decode()
        line = f'{{listener="{self.d.listeners[0][0]}",mode="line"}}'
        self.assertIn((line, 3.0), samples(page, "ackd_acks_sent_total"))
        self.assertIn((line, 3.0), samples(page, "ackd_messages_received_total"))
        self.assertIn((line, 1.0), samples(page, "ackd_connections_accepted_total"))
        self.assertEqual(samples(page, "ackd_healthy"), [("", 1.0)])
        self.assertEqual(samples(page, "ackd_draining"), [("", 0.0)])
        # metrics listeners count nothing: no sample carries their address.
        self.assertNotIn(self.d.listeners[1][0], page)

    def test_promtool_finds_nothing_wrong(self):
        need(self, "promtool", "prometheus")
        self.acks(self.d, 1)
        page = self.curl(self.url(self.d, "/metrics"))
        r = subprocess.run(["promtool", "check", "metrics"], input=page, capture_output=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, b""))

    def test_get_healthz_is_200_ok(self):
        status, headers, body = self.get(self.d, "/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))
        self.assertEqual(headers["content-type"], "text/plain; charset=utf-8")

    def test_head_gives_the_headers_without_a_body(self):
        for path, length in (("/healthz", 3), ("/metrics", None)):
            status, headers, body = self.get(self.d, path, "--head")
            self.assertEqual((status, body), (200, b""), path)
            if length is not None:
                self.assertEqual(int(headers["content-length"]), length)
            else:
                self.assertGreater(int(headers["content-length"]), 1000)

    def test_keep_alive_serves_two_requests_on_one_connection(self):
        # curl reuses its connection for the second URL: it connects once.
        out = self.curl("-o", "/dev/null", "-o", "/dev/null", "-w", "%{http_code} %{num_connects}\n",
                        self.url(self.d, "/healthz"), self.url(self.d, "/metrics"))
        self.assertEqual(out.decode().split("\n"), ["200 1", "200 0", ""])
        # The same on a raw socket, both requests in one write (pipelined), and it stays open.
        s = self.d.connect(1)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
        one = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n" \
              b"Connection: keep-alive\r\n\r\nok\n"
        self.assertEqual(recv_exactly(s, 2 * len(one)), one * 2)
        s.sendall(b"HEAD /healthz HTTP/1.1\r\n\r\n")
        self.assertEqual(recv_exactly(s, len(one) - 3), one[:-3])

    def test_connection_close_is_honoured(self):
        status, headers, body = self.get(self.d, "/healthz", "-H", "Connection: close")
        self.assertEqual((status, headers["connection"], body), (200, "close", b"ok\n"))
        s = self.d.connect(1)
        s.sendall(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
        data = recv_all(s)   # EOF after the one response
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nok\n"), data)
        # HTTP/1.0 closes unless it asks for keep-alive.
        out = self.curl("-0", "-o", "/dev/null", "-w", "%{http_code}", self.url(self.d, "/healthz"))
        self.assertEqual(out, b"200")

    def test_other_path_is_404(self):
        for path in ("/", "/metricsx", "/metrics/", "/%6detrics", "/healthz/../metrics"):
            status, _, _ = self.get(self.d, path, "--path-as-is")
            self.assertEqual(status, 404, path)
        # A query is ignored.
        self.assertEqual(self.get(self.d, "/healthz?verbose=1")[0], 200)

    def test_other_method_is_405_with_allow(self):
        for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
            status, headers, _ = self.get(self.d, "/metrics", "-X", method)
            self.assertEqual((status, headers.get("allow")), (405, "GET, HEAD"), method)
        # With a body too: refused before it is read.
        status, _, _ = self.get(self.d, "/healthz", "--data-binary", "x=1")
        self.assertEqual(status, 405)

    def test_malformed_request_is_400_and_closed(self):
        # A field name with a space, and a request target with one.
        self.assertEqual(self.get(self.d, "/healthz", "-H", "Bad Header: x")[0], 400)
        self.assertEqual(self.get(self.d, "/healthz", "--request-target", "/a b")[0], 400)
        for junk in (b"GARBAGE\r\n\r\n", b"GET  /healthz HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x02\x00\x01"):
            s = self.d.connect(1)
            s.sendall(junk)
            status, headers, _ = parse_response(recv_all(s))
            self.assertEqual((status, headers["connection"]), (400, "close"), junk)

    def test_oversize_head_is_431_and_closed(self):
        big = "a" * HEAD_MAX
        status, headers, _ = self.get(self.d, "/healthz", "-H", f"X-Big: {big}")
        self.assertEqual((status, headers["connection"]), (431, "close"))
        # One under the limit is served: the limit is the head, not a line.
        head = b"GET /healthz HTTP/1.1\r\nX-Fill: \r\n\r\n"
        fill = b"b" * (HEAD_MAX - len(head))
        s = self.d.connect(1)
        s.sendall(head.replace(b"X-Fill: ", b"X-Fill: " + fill))
        self.assertTrue(s.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n"))

    def test_unfinished_request_gets_408_at_the_request_timeout(self):
        # curl's telnet:// sends standard input as it is: half a request, then nothing until
        # curl has had the answer (it leaves when its input ends).
        hold = REQUEST_TIMEOUT + 2 * TIMEOUT_SCALE
        script = (f"(printf 'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n'; sleep {hold}) | "
                  f"curl -sS --max-time {hold + 5} telnet://127.0.0.1:{self.d.port(1)}")
        out = subprocess.run(["sh", "-c", script], capture_output=True, timeout=hold + 10)
        self.assertEqual(out.returncode, 0, out.stderr)
        status, headers, body = parse_response(out.stdout)
        self.assertEqual((status, headers["connection"], body), (408, "close", b"request timeout\n"))
        # Half a request on a socket: the 408 comes at the timeout, not before.
        s = self.d.connect(1)
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        s.settimeout(REQUEST_TIMEOUT + 3 * TIMEOUT_SCALE)
        start = time.monotonic()
        status, _, _ = parse_response(recv_all(s))
        took = time.monotonic() - start
        self.assertEqual(status, 408)
        self.assertGreaterEqual(took, REQUEST_TIMEOUT - 0.2)
        self.assertLess(took, REQUEST_TIMEOUT + 2 * TIMEOUT_SCALE)
        # A byte a second does not extend it: the bound is on the whole request.
        s = self.d.connect(1)
        start = time.monotonic()
        got = b""
        s.settimeout(1)
        for b in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"s" * 20:
            try:
                s.send(bytes([b]))
                got = s.recv(4096)
                if got:
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        took = time.monotonic() - start
        self.assertTrue(got.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), got)
        self.assertLess(took, REQUEST_TIMEOUT + 2 * TIMEOUT_SCALE)
        # A connection that sends nothing is closed at the same bound, without a word.
        s = self.d.connect(1)
        s.settimeout(REQUEST_TIMEOUT + 3 * TIMEOUT_SCALE)
        start = time.monotonic()
        self.assertEqual(recv_all(s), b"")
        self.assertGreaterEqual(time.monotonic() - start, REQUEST_TIMEOUT - 0.2)


class SameTableTests(MetricsCase):
    # Every counter of the exit summary, and its sample in the page.
    SUMMARY_TO_PAGE = {
        "accepted": ("ackd_connections_accepted_total", ""),
        "messages": ("ackd_messages_received_total", ""),
        "acknowledged": ("ackd_acks_sent_total", ""),
        "busy": ("ackd_connections_rejected_total", 'reason="busy"'),
        "proxy-untrusted": ("ackd_connections_rejected_total", 'reason="untrusted"'),
        "too-long": ("ackd_messages_too_long_total", ""),
        "idle-timeouts": ("ackd_idle_timeouts_total", ""),
        "resets": ("ackd_connection_resets_total", ""),
        "reset-closes": ("ackd_connection_reset_closes_total", ""),
        "accept-errors": ("ackd_accept_errors_total", ""),
        "proxy-bad-headers": ("ackd_proxy_header_errors_total", 'reason="malformed"'),
        "proxy-timeouts": ("ackd_proxy_header_errors_total", 'reason="timeout"'),
        "handed-over": ("ackd_connections_handed_over_total", ""),
        "taken-over": ("ackd_connections_taken_over_total", ""),
        "handover-lost": ("ackd_connections_handover_lost_total", ""),
    }

    def test_page_and_exit_summary_count_the_same(self):
        need(self, "curl", "curl")
        d = self.start("-l", "line@127.0.0.1:0", "-l", "127.0.0.1:0", "-l", "metrics@127.0.0.1:0",
                       "--max-connections", "2", "--max-message", "10", "--idle-timeout", "1s")
        self.acks(d, 5)
        s = d.connect(0)
        s.sendall(b"ok\n" + b"x" * 20 + b"\n")        # one ack, then too long
        self.assertEqual(recv_all(s), b"ACK!\nERR message too long\n")
        s.close()
        url = f"http://127.0.0.1:{d.port(2)}/metrics"
        gone = wait_until(lambda: samples(self.curl(url).decode(), "ackd_connections_active") == [("", 0.0)])
        self.assertTrue(gone, "connections still open")
        held = [d.connect(0), d.connect(0)]    # (oneshot defers the accept until a byte comes)
        self.assertTrue(wait_until(
            lambda: samples(self.curl(url).decode(), "ackd_connections_active") == [("", 2.0)]))
        busy = d.connect(1)
        busy.sendall(b"Hello World!")
        self.assertEqual(recv_all(busy), b"ERR busy\n")
        for c in held:                              # both time out idle
            self.assertEqual(recv_all(c), b"")
        page = self.curl(url).decode()
        self.assertEqual(d.stop(), 0)
        summary = d.summary()
        self.assertEqual(set(summary), set(self.SUMMARY_TO_PAGE), "a counter without its metric here")
        for name, (family, label) in self.SUMMARY_TO_PAGE.items():
            values = [v for labels, v in samples(page, family) if label in labels]
            self.assertEqual(len(values), 2, (name, family))      # one per ack listener
            self.assertEqual(sum(values), summary[name], name)
        self.assertEqual((summary["acknowledged"], summary["too-long"], summary["busy"], summary["idle-timeouts"]),
                         (6, 1, 1, 2))


class PrometheusTests(MetricsCase):
    """A real Prometheus server scrapes ackd once a second."""

    def setUp(self):
        if not os.access(PROMETHEUS, os.X_OK):
            self.skipTest(f"{PROMETHEUS} not installed (package prometheus)")
        self.d = self.start("-l", "line@127.0.0.1:0", "-l", "127.0.0.1:0", "-l", "metrics@127.0.0.1:0",
                            "-t", "2")
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.prom_port = free_port()
        config = os.path.join(self.tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: ackd\n    static_configs:\n"
                    f"      - targets: ['127.0.0.1:{self.d.port(2)}']\n")
        self.prom_log = open(os.path.join(self.tmp, "prometheus.log"), "w+")
        self.prom = subprocess.Popen([PROMETHEUS, f"--config.file={config}",
                                      f"--storage.tsdb.path={os.path.join(self.tmp, 'data')}",
                                      f"--web.listen-address=127.0.0.1:{self.prom_port}",
                                      "--log.level=warn"],
                                     stdin=subprocess.DEVNULL, stdout=self.prom_log, stderr=subprocess.STDOUT)
        self.addCleanup(self.stop_prometheus)
        self.poll(lambda: self.http(f"/-/ready") is not None, 30, "Prometheus to be ready")

    def stop_prometheus(self):
        self.prom.terminate()
        try:
            self.prom.wait(20)
        except subprocess.TimeoutExpired:
            self.prom.kill()
            self.prom.wait()
        self.prom_log.close()

    def prom_log_text(self):
        self.prom_log.flush()
        with open(self.prom_log.name) as f:
            return f.read()

    def http(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.prom_port}{path}", timeout=5) as r:
                return r.read()
        except OSError:
            return None

    def query(self, expr):
        """The instant vector expr evaluates to: [(labels, value)]."""
        body = self.http("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if body is None:
            return None
        reply = json.loads(body)
        self.assertEqual(reply["status"], "success", reply)
        return [(r["metric"], float(r["value"][1])) for r in reply["data"]["result"]]

    def poll(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.prom.poll() is not None:
                self.fail(f"Prometheus exited ({self.prom.returncode}):\n{self.prom_log_text()}")
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        self.fail(f"timed out waiting for {what}; Prometheus log:\n{self.prom_log_text()}")

    def test_prometheus_sees_exactly_the_acks_sent(self):
        # A known number of acks, over both modes and several connections.
        line_acks = [100, 250, 1]
        oneshot_acks = 17
        for n in line_acks:
            self.acks(self.d, n)
        for _ in range(oneshot_acks):
            s = self.d.connect(1)
            s.sendall(b"Hello World!")
            self.assertEqual(recv_all(s), b"ACK!")
        expected = sum(line_acks) + oneshot_acks

        def scraped_all():
            result = self.query("ackd_acks_sent_total")
            return result and sum(v for _, v in result) == expected and result

        # Prometheus applies new targets within 5 s, then scrapes every second.
        result = self.poll(scraped_all, 45, f"ackd_acks_sent_total to sum to {expected}")
        by_mode = {m["mode"]: v for m, v in result}
        self.assertEqual(by_mode, {"line": sum(line_acks), "oneshot": oneshot_acks})
        for labels, _ in result:
            self.assertEqual(labels["job"], "ackd")
            self.assertEqual(labels["instance"], f"127.0.0.1:{self.d.port(2)}")
        self.assertEqual(self.query("sum(ackd_acks_sent_total)")[0][1], expected)
        # The scrape itself is healthy, and nothing in the page was dropped as invalid.
        self.assertEqual([v for _, v in self.query('up{job="ackd"}')], [1.0])
        self.assertEqual([v for _, v in self.query("ackd_healthy")], [1.0])
        targets = json.loads(self.http("/api/v1/targets"))["data"]["activeTargets"]
        self.assertEqual([(t["health"], t["lastError"]) for t in targets], [("up", "")])
        # More acks: the next scrapes see them.
        self.acks(self.d, 33)
        expected += 33
        self.poll(scraped_all, 15, f"ackd_acks_sent_total to sum to {expected}")


class ShutdownDelayTests(MetricsCase):
    def test_healthz_is_503_from_the_first_moment_while_acks_go_on(self):
        need(self, "curl", "curl")
        delay = 2.0
        d = self.start_metrics("--shutdown-delay", "2")
        hz = d.connect(1)       # keep-alive, as a load balancer's checker would

        def healthz():
            hz.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data or not re.search(rb"\r\n\r\n\w+\n$", data):
                chunk = hz.recv(4096)
                self.assertTrue(chunk, "metrics connection closed")
                data += chunk
            return parse_response(data)

        self.assertEqual(healthz()[0], 200)
        line = d.connect(0)
        line.sendall(b"before\n")
        self.assertEqual(recv_exactly(line, 5), b"ACK!\n")
        mark = len(d.log_lines())
        sent_at = time.monotonic()
        d.signal(signal.SIGTERM)
        # ackd sets the flag before it logs the line: from then on, never a 200.
        d.wait_log(r"Stopping in 2s: serving meanwhile, with /healthz answering 503", start=mark)
        flagged = time.monotonic() - sent_at
        self.assertLess(flagged, 0.5 * TIMEOUT_SCALE)
        status, _, body = healthz()
        self.assertEqual((status, body), (503, b"draining\n"))
        served = 0
        while time.monotonic() - sent_at < delay - 0.3:
            # Old connections and new ones are still acknowledged, and /healthz stays 503.
            line.sendall(b"during\n")
            self.assertEqual(recv_exactly(line, 5), b"ACK!\n")
            fresh = d.connect(0)
            fresh.sendall(b"new\n")
            self.assertEqual(recv_exactly(fresh, 5), b"ACK!\n")
            fresh.close()
            self.assertEqual(healthz()[0], 503)
            served += 1
            time.sleep(0.1)
        self.assertGreaterEqual(served, 5)
        page = self.curl(self.url(d, "/metrics")).decode()
        self.assertEqual(samples(page, "ackd_draining"), [("", 1.0)])
        self.assertEqual(samples(page, "ackd_healthy"), [("", 0.0)])
        # Then the drain, as without a delay: no sooner than the delay.
        d.wait_log(r"Stopping: no new connections, draining", timeout=delay + 2, start=mark)
        self.assertGreaterEqual(time.monotonic() - sent_at, delay - 0.05)
        self.assertEqual(d.wait(), 0)
        # The line connection got its acks, then a graceful close.
        self.assertEqual(recv_all(line), b"")
        summary = d.summary()
        self.assertEqual(summary["acknowledged"], 1 + 2 * served)


class Ptrace:
    """Stops one thread (not its process) with PTRACE_SEIZE and PTRACE_INTERRUPT, for as long
    as the context lasts: a worker that makes no progress, as a stuck one would."""
    SEIZE, INTERRUPT, DETACH = 0x4206, 0x4207, 17

    def __init__(self, tid):
        self.tid = tid
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]

    def call(self, request):
        if self.libc.ptrace(request, self.tid, None, None) != 0:
            raise OSError(ctypes.get_errno(), f"ptrace({request}) of thread {self.tid}")

    def __enter__(self):
        self.call(self.SEIZE)
        self.call(self.INTERRUPT)
        os.waitpid(self.tid, 0x40000000)    # __WALL: until the thread is stopped
        return self

    def __exit__(self, *exc):
        self.call(self.DETACH)


class StuckWorkerTests(MetricsCase):
    def test_healthz_is_503_while_a_worker_makes_no_progress(self):
        d = self.start_metrics()
        self.assertEqual(self.get_health(d), (200, b"ok\n"))
        workers = [t for t in os.listdir(f"/proc/{d.pid}/task") if self.comm(d, t).startswith("ackd-worker-")]
        self.assertEqual(len(workers), 2, workers)
        mark = len(d.log_lines())
        try:
            stopped = Ptrace(int(workers[0])).__enter__()
        except OSError as e:
            self.skipTest(f"cannot stop a thread: {e}")
        try:
            # Two status ticks without progress (2 s; with the watchdog a quarter of it each).
            d.wait_log(r"Worker \d made no progress for \d+ms; /healthz answers 503", timeout=5, start=mark)
            self.assertEqual(self.get_health(d), (503, b"stuck\n"))
            page = self.curl(self.url(d, "/metrics")).decode()
            self.assertEqual(samples(page, "ackd_healthy"), [("", 0.0)])
            self.assertEqual(samples(page, "ackd_draining"), [("", 0.0)])
        finally:
            stopped.__exit__()
        d.wait_log(r"Every worker makes progress again", timeout=5, start=mark)
        self.assertEqual(self.get_health(d), (200, b"ok\n"))
        self.acks(d, 10)

    @staticmethod
    def comm(d, tid):
        with open(f"/proc/{d.pid}/task/{tid}/comm") as f:
            return f.read().strip()

    def get_health(self, d):
        need(self, "curl", "curl")
        status, _, body = self.get(d, "/healthz")
        return status, body


class ManPageTests(MetricsCase):
    """ackd(8)'s METRICS section lists every family of the page with its type, and nothing else."""

    def man_families(self):
        with open(os.path.join(SOURCE_ROOT, "man", "ackd.8.scd")) as f:
            text = f.read()
        m = re.search(r"^# METRICS\n(.*?)^# ", text, re.M | re.S)
        self.assertIsNotNone(m, "no METRICS section in ackd(8)")
        entries = re.findall(r"^\*((?:ackd|process)_\w+)\*(?:\{[^}\n]*\})? \((counter|gauge)\)$", m.group(1), re.M)
        self.assertEqual(len(entries), len(set(n for n, _ in entries)), "a family listed twice")
        return dict(entries)

    def test_man_page_and_page_agree_both_ways(self):
        need(self, "curl", "curl")
        # Every kind of ack listener, so that every family has samples.
        d = self.start("-l", "line@127.0.0.1:0", "-l", "oneshot+proxy@127.0.0.1:0", "-l", "metrics@127.0.0.1:0")
        page = families(self.curl(f"http://127.0.0.1:{d.port(2)}/metrics").decode())
        documented = self.man_families()
        self.assertGreaterEqual(len(page), 20)
        missing = {n: t for n, t in page.items() if documented.get(n) != t}
        self.assertEqual(missing, {}, "in the page, but not in ackd(8) with that type")
        extra = {n: t for n, t in documented.items() if n not in page}
        self.assertEqual(extra, {}, "in ackd(8), but not in the page")


if __name__ == "__main__":
    tap.main()
