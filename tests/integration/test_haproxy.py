#!/usr/bin/env python3
"""Scale-out behind Debian's real HAProxy: three ackd instances on 127.0.0.11 to .13
with +proxy listeners, HAProxy in mode tcp in front of them with send-proxy-v2 and
tcp-check health checks, ackc bench through it.

The backend directives (balance, retries, redispatch, the tcp-check rules) are read
from the shipped docs/examples/haproxy.cfg, so what this suite proves is what the
package tells operators to run; only the server lines, the check interval and the
source address are the test's own.

Figures (requests, errors, time to DOWN) are printed as TAP comments.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import tap
from ackdtest import ACKD, SOURCE_ROOT, AckdTestCase, free_port, recv_all, wait_until

ACKC = os.environ.get("ACKC_BIN") or os.path.join(os.path.dirname(ACKD), "..", "client", "ackc")
HAPROXY = "/usr/sbin/haproxy"
EXAMPLE = os.path.join(SOURCE_ROOT, "docs", "examples", "haproxy.cfg")

HOSTS = ["127.0.0.11", "127.0.0.12", "127.0.0.13"]
CLIENT = "127.0.0.77"           # where ackc connects from: what every ackd must log
LB_SOURCE = "127.0.0.1"         # where HAProxy connects from: the only --proxy-from
INTER, FALL, RISE = 0.2, 2, 1   # the health checks: seconds between them, DOWN after FALL, UP after RISE
# Scheduling on a loaded machine, and the poll of the stats socket, on top of
# HAProxy's own bound (INTER x FALL to DOWN, INTER x RISE to UP).
SLACK = 0.5
V2_LOCAL = b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"
ACCEPTED = re.compile(r"Accepted connection from (\S+):(\d+) via (\S+):(\d+)$")


def comment(text):
    print(f"# {text}", flush=True)


def example_backend(name, metrics_port):
    """The directives of backend NAME in the shipped example, without its servers, and
    with the test's metrics port."""
    lines, inside = [], False
    with open(EXAMPLE) as f:
        for raw in f:
            line = raw.rstrip()
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line[0].isspace():
                inside = line.split() == ["backend", name]
                continue
            if inside and line.split()[0] not in ("server", "default-server"):
                lines.append(re.sub(r"^(tcp-check connect .*port )\d+", rf"\g<1>{metrics_port}", line.strip()))
    if not lines:
        raise AssertionError(f"no backend {name} in {EXAMPLE}")
    return lines


class HAProxy:
    """haproxy -db (foreground) with a stats socket in a temporary directory."""

    def __init__(self, tmp, frontends, backends, metrics_port):
        self.sock = os.path.join(tmp, "admin.sock")
        self.cfg = os.path.join(tmp, "haproxy.cfg")
        text = ["global", f"        stats socket {self.sock} mode 600 level admin", "        maxconn 4000",
                "defaults", "        mode tcp", "        timeout connect 1s", "        timeout client 10s",
                "        timeout server 10s"]
        for name, port in frontends.items():
            text += [f"frontend fe_{name}", f"        bind 127.0.0.1:{port}", f"        default_backend {name}"]
        for name, servers in backends.items():
            text += [f"backend {name}"] + ["        " + d for d in example_backend(name, metrics_port)]
            text += [f"        source {LB_SOURCE}",
                     f"        default-server check inter {int(INTER * 1000)}ms fall {FALL} rise {RISE} send-proxy-v2"]
            text += [f"        server {sv} {addr}" for sv, addr in servers]
        with open(self.cfg, "w") as f:
            f.write("\n".join(text) + "\n")
        check = subprocess.run([HAPROXY, "-c", "-f", self.cfg], capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise AssertionError(f"haproxy -c failed:\n{check.stdout}{check.stderr}\n" + "\n".join(text))
        self.log = open(os.path.join(tmp, "haproxy.log"), "w+")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", self.cfg], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_until(lambda: self._try("show info"), timeout=10):
            raise AssertionError("haproxy's stats socket never answered:\n" + self.log_text())

    def _try(self, command):
        try:
            return self.command(command)
        except OSError:
            return None

    def command(self, command):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.sock)
            s.sendall(command.encode() + b"\n")
            return recv_all(s).decode()

    def stat(self):
        """{(backend, server): row of "show stat"} for the servers."""
        lines = self.command("show stat").splitlines()
        header = lines[0].lstrip("# ").split(",")
        rows = {}
        for line in lines[1:]:
            if line:
                row = dict(zip(header, line.split(",")))
                if row["svname"] not in ("FRONTEND", "BACKEND"):
                    rows[(row["pxname"], row["svname"])] = row
        return rows

    def wait_status(self, key, status, timeout, checked=False):
        """Polls until server key is status (UP: in rotation, "UP 1/2" included; with
        checked, only after a passing check, not HAProxy's initial assumption); the
        seconds it took."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            row = self.stat()[key]
            if row["status"].split()[0] == status and (not checked or row["check_status"] == "L7OK"):
                return time.monotonic() - start
            time.sleep(0.01)
        raise AssertionError(f"{key} not {status} within {timeout}s: {self.stat()[key]}\n{self.log_text()}")

    def log_text(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def ackd_args(host, metrics_port, ports=(0, 0), verbose=True):
    """As the example's comment says: +proxy listeners, /healthz, HAProxy trusted."""
    return (["-v"] if verbose else []) + [
        "-l", f"oneshot+proxy@{host}:{ports[0]}", "-l", f"line+proxy@{host}:{ports[1]}",
        "-l", f"metrics@{host}:{metrics_port}", "--proxy-from", f"{LB_SOURCE}/32"]


def listener_port(d, mode):
    for i, (_, m) in enumerate(d.listeners):
        if m == mode:
            return d.port(i)
    raise AssertionError(f"no {mode} listener in {d.listeners}")


def bench(port, *args, duration=None, timeout=60):
    """Starts ackc bench against 127.0.0.1:port; .result() waits and parses its JSON."""
    argv = [ACKC, "bench", "-H", "127.0.0.1", "-p", str(port), "--source", CLIENT, "--json", "--timeout", "3s"]
    argv += ["-d", str(duration)] if duration else []
    proc = subprocess.Popen(argv + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result():
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode not in (0, 1):
            raise AssertionError(f"ackc bench exited {proc.returncode}: {err}")
        return json.loads(out)
    proc.result = result
    return proc


class Fleet(AckdTestCase):
    """Three ackd behind one HAProxy, fresh for each test."""
    verbose = True
    options = []

    def setUp(self):
        if not os.access(HAPROXY, os.X_OK):
            self.skipTest(f"{HAPROXY} is not installed (Debian package haproxy)")
        self.tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.tmp, True)
        # One metrics port for all: HAProxy's check rule names the port, the hosts differ.
        self.metrics_port = free_port()
        self.backends = [self.start(*ackd_args(h, self.metrics_port, verbose=self.verbose), *self.options)
                         for h in HOSTS]
        self.ports = [(listener_port(d, "oneshot+proxy"), listener_port(d, "line+proxy")) for d in self.backends]
        self.fe = {"ackd_oneshot": free_port(), "ackd_line": free_port()}
        self.names = [f"ackd{i + 1}" for i in range(len(HOSTS))]
        servers = {"ackd_oneshot": [(n, f"{h}:{p[0]}") for n, h, p in zip(self.names, HOSTS, self.ports)],
                   "ackd_line": [(n, f"{h}:{p[1]}") for n, h, p in zip(self.names, HOSTS, self.ports)]}
        self.lb = HAProxy(self.tmp, self.fe, servers, self.metrics_port)
        self.addCleanup(self.lb.close)
        for be in servers:
            for sv in self.names:
                self.lb.wait_status((be, sv), "UP", timeout=10, checked=True)

    def restart(self, i):
        d = self.start(*ackd_args(HOSTS[i], self.metrics_port, self.ports[i], verbose=self.verbose), *self.options)
        self.backends[i] = d
        return d

    def stot(self, backend, column="stot"):
        return [int(self.lb.stat()[(backend, sv)][column]) for sv in self.names]

    def assert_errors_are_the_victims(self, r, i, exact):
        """The sessions HAProxy saw aborted by a server (srv_abrt, a reset) are all
        server i's, and each reached the client as an error; with exact, every client
        error is one of them. (A killed ackd that had read a message closes with a FIN,
        which HAProxy passes on as a normal end.)"""
        aborted = self.stot("ackd_oneshot", "srv_abrt")
        if exact:
            self.assertEqual(r["errors_total"], aborted[i], (r, aborted))
        self.assertGreaterEqual(r["errors_total"], aborted[i], (r, aborted))
        self.assertEqual(sum(aborted) - aborted[i], 0, aborted)
        self.assertEqual(r["errors_total"], r["errors"]["closed"] + r["errors"]["reset"], r)

    def wait_down(self, i, since):
        """Seconds from since until each of backend i's servers was DOWN; within the
        checks' bound: a check passed just before, FALL more fail, INTER apart."""
        took = []
        for be in ("ackd_oneshot", "ackd_line"):
            self.lb.wait_status((be, self.names[i]), "DOWN", timeout=INTER * FALL + SLACK)
            took.append(time.monotonic() - since)
            self.assertLessEqual(took[-1], INTER * FALL + SLACK)
        return took

    def summaries(self):
        for d in self.backends:
            if d.alive():
                self.assertEqual(d.stop(), 0)
        return [d.summary() for d in self.backends]


class ThroughHAProxy(Fleet):
    def test_1_backends_are_up_through_local_checks(self):
        rows = self.lb.stat()
        for (be, sv), row in rows.items():
            self.assertEqual(row["status"].split()[0], "UP", (be, sv))
            self.assertEqual(row["check_status"], "L7OK", (be, sv))
        self.assertEqual(len(rows), 6)
        # Each check is a connection from HAProxy with a header without addresses. HAProxy
        # ends its line-mode checks with a reset once ACK! has arrived: a normal close,
        # counted as reset-closes, never as an error (resets).
        time.sleep(INTER * 3)
        for d in self.backends:
            d.wait_log(rf"Accepted connection from {re.escape(LB_SOURCE)}:\d+ \(PROXY header without addresses\)")
            self.assertEqual(d.stop(), 0)
            counters = d.summary()
            self.assertEqual(counters["proxy-bad-headers"] + counters["proxy-untrusted"], 0, counters)
            self.assertEqual(counters["resets"], 0, counters)
            self.assertGreater(counters["reset-closes"], 0, counters)
            comment(f"{d.listeners[0][0]}: checks answered {counters['acknowledged']}, "
                    f"reset-closes {counters['reset-closes']}, resets {counters['resets']}")

    def test_2_every_backend_logs_the_real_client_address(self):
        for be, n in (("ackd_oneshot", 90), ("ackd_line", 9)):
            before = [len(d.log_lines()) for d in self.backends]
            r = bench(self.fe[be], "-m", be.split("_")[1], "-c", "3" if n == 90 else "9", "-n", str(n)).result()
            self.assertEqual(r["errors_total"], 0, r)
            want = r["connected"]       # oneshot: one per request; line: 9 connections
            self.assertEqual(want, 90 if be == "ackd_oneshot" else 9, r)

            def seen():
                found = []
                for d, start in zip(self.backends, before):
                    found.append([m for m in (ACCEPTED.search(line) for line in d.log_lines()[start:]) if m])
                return found if sum(map(len, found)) >= want else None
            found = wait_until(seen, timeout=10) or seen()
            self.assertIsNotNone(found, f"{be}: fewer than {want} proxied connections logged")
            for i, matches in enumerate(found):
                self.assertGreater(len(matches), 0, f"{be}: ackd{i + 1} got no client")
                for m in matches:
                    self.assertEqual(m.group(1), CLIENT, m.group(0))
                    self.assertEqual(m.group(3), LB_SOURCE, m.group(0))
            self.assertEqual(sum(map(len, found)), want)
            comment(f"{be}: {want} connections from {CLIENT}, per backend {[len(m) for m in found]}")

    def test_6_bad_or_missing_headers_are_closed_and_ackd_keeps_serving(self):
        d = self.backends[0]
        addr = (HOSTS[0], self.ports[0][0])
        for payload in (b"Hello World!", b"PROXY TCP4 203.0.113.7\r\n", b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x02ab"):
            with socket.create_connection(addr, timeout=10, source_address=(LB_SOURCE, 0)) as s:
                s.sendall(payload)
                s.shutdown(socket.SHUT_WR)
                self.assertEqual(recv_all(s), b"", payload)
        # A well-formed header from a source outside --proxy-from.
        with socket.create_connection(addr, timeout=10, source_address=(CLIENT, 0)) as s:
            s.sendall(V2_LOCAL + b"Hello World!")
            try:
                self.assertEqual(recv_all(s), b"")
            except ConnectionResetError:
                pass
        r = bench(self.fe["ackd_oneshot"], "-c", "3", "-n", "60").result()
        self.assertEqual((r["requests"], r["errors_total"]), (60, 0), r)
        self.assertEqual(self.lb.stat()[("ackd_oneshot", "ackd1")]["status"], "UP")
        counters = self.summaries()[0]
        self.assertEqual((counters["proxy-bad-headers"], counters["proxy-untrusted"]), (3, 1), counters)
        self.assertGreater(counters["acknowledged"], 0)


class LoadThroughHAProxy(Fleet):
    # No per-connection log lines under load.
    verbose = False

    def assert_traffic_everywhere(self, be, before, r):
        after = self.stot(be)
        per_server = [a - b for a, b in zip(after, before)]
        comment(f"{be}: {r['requests']} requests, {r['errors_total']} errors, "
                f"{r['throughput_per_s']:.0f}/s, sessions per backend {per_server}")
        for i, n in enumerate(per_server):
            self.assertGreater(n, 0, f"{be}: no traffic on ackd{i + 1}")
        return per_server

    def test_3_bench_in_both_modes_runs_clean_on_all_backends(self):
        done = 0
        for be, args in (("ackd_oneshot", ["-c", "12"]), ("ackd_line", ["-m", "line", "-c", "12"])):
            before = self.stot(be)
            r = bench(self.fe[be], *args, duration=3).result()
            self.assertEqual(r["errors_total"], 0, r)
            self.assertGreater(r["requests"], 0, r)
            self.assert_traffic_everywhere(be, before, r)
            done += r["requests"]
        # Every acknowledgement ackc counted came from one of the three.
        self.assertGreaterEqual(sum(c["acknowledged"] for c in self.summaries()), done)

    def test_4_backend_killed_mid_run_goes_down_and_comes_back(self):
        c = 12
        before = self.stot("ackd_oneshot")
        # Until the restarted backend has taken traffic (stopped with SIGINT, which
        # ackc answers with its report): a restart under valgrind takes seconds.
        run = bench(self.fe["ackd_oneshot"], "-c", str(c), duration=60, timeout=90)
        time.sleep(1.5)
        victim = self.backends[1]
        killed = time.monotonic()
        victim.kill()               # SIGKILL, then reaped
        t_down = self.wait_down(1, killed)
        comment(f"kill -9: DOWN after {t_down[0]:.3f}s (oneshot), {t_down[1]:.3f}s (line), "
                f"bound {INTER * FALL + SLACK:.1f}s")
        time.sleep(0.5)
        back = self.restart(1)
        t_up = self.lb.wait_status(("ackd_oneshot", self.names[1]), "UP", timeout=INTER * RISE + SLACK, checked=True)
        at_up = self.stot("ackd_oneshot")[1]
        self.assertTrue(wait_until(lambda: self.stot("ackd_oneshot")[1] > at_up, timeout=10),
                        "the restarted backend took no traffic")
        time.sleep(0.5)
        self.assertIsNone(run.poll(), "the bench ended before the restarted backend took traffic")
        run.send_signal(signal.SIGINT)
        r = run.result()
        self.assertTrue(r["interrupted"], r)
        row = self.lb.stat()[("ackd_oneshot", self.names[1])]
        self.assert_traffic_everywhere("ackd_oneshot", before, r)
        comment(f"restarted: UP after {t_up:.3f}s, then {int(row['stot']) - at_up} sessions; "
                f"HAProxy retries {row['wretr']}, redispatches {row['wredis']}; client errors {r['errors']}; "
                + ", ".join(f"{k} {row[k]}" for k in ("eresp", "srv_abrt", "econ", "cli_abrt")))
        # Irreducible: in mode tcp HAProxy retries only connections that failed to open
        # (refused, the dead port); a request already on the killed ackd (accepted, or
        # in its listen backlog) has its connection closed or reset, and HAProxy passes
        # that on. Each of the c requests in flight fails at most once, and only so.
        self.assertLessEqual(r["errors_total"], c, r)
        self.assert_errors_are_the_victims(r, 1, exact=False)
        counters = self.summaries()[1]
        self.assertGreaterEqual(counters["acknowledged"], int(row["stot"]) - at_up)
        self.assertIs(back, self.backends[1])

    def test_5b_backend_stopped_without_shutdown_delay(self):
        """A bare SIGTERM: ackd seals its listeners (new SYNs dropped), serves what the
        kernel had queued, then closes them. HAProxy's connection attempts meanwhile
        fail to open (a timeout, or refused once closed), which it retries elsewhere;
        none that opened is reset: no client error."""
        c = 12
        before = self.stot("ackd_oneshot")
        run = bench(self.fe["ackd_oneshot"], "-m", "oneshot", "-c", str(c), duration=4)
        time.sleep(1.5)
        stopped = time.monotonic()
        self.backends[1].signal(signal.SIGTERM)
        t_down = self.wait_down(1, stopped)
        self.assertEqual(self.backends[1].wait(), 0)
        r = run.result()
        row = self.lb.stat()[("ackd_oneshot", self.names[1])]
        comment(f"bare SIGTERM: DOWN after {t_down[0]:.3f}s; {r['requests']} requests, client errors {r['errors']}; "
                + ", ".join(f"{k} {row[k]}" for k in ("eresp", "srv_abrt", "econ", "cli_abrt", "wretr", "wredis")))
        # Before the seal: client errors in 1 run in 10 of a plain build, up to 12 a run
        # under valgrind.
        self.assertEqual(r["errors_total"], 0, r)
        self.assert_errors_are_the_victims(r, 1, exact=True)
        self.assertGreater(r["requests"], 0, r)
        after = self.stot("ackd_oneshot")
        for i in (0, 2):
            self.assertGreater(after[i], before[i])


class GracefulStop(Fleet):
    """--shutdown-delay: /healthz answers 503 at once, HAProxy's check takes the
    server out of rotation while ackd still serves, then ackd drains."""
    verbose = False
    delay = 1.5     # above INTER x FALL + SLACK
    options = ["--shutdown-delay", f"{delay}s"]

    def test_5_backend_stopped_mid_run_costs_no_request(self):
        before = self.stot("ackd_oneshot")
        run = bench(self.fe["ackd_oneshot"], "-c", "12", duration=4)
        time.sleep(1.5)
        victim = self.backends[1]
        stopped = time.monotonic()
        victim.signal(signal.SIGTERM)
        t_down = self.wait_down(1, stopped)
        self.assertTrue(victim.alive(), "ackd stopped before HAProxy took it out of rotation")
        at_down = self.stot("ackd_oneshot")[1]
        self.assertEqual(victim.wait(), 0)
        self.assertGreaterEqual(time.monotonic() - stopped, self.delay)
        r = run.result()
        comment(f"SIGTERM, --shutdown-delay {self.delay}s: DOWN after {t_down[0]:.3f}s; "
                f"{r['requests']} requests, client errors {r['errors']}")
        self.assertEqual(r["errors_total"], 0, r)
        self.assertGreater(r["requests"], 0, r)
        after = self.stot("ackd_oneshot")
        self.assertEqual(after[1], at_down, "HAProxy sent connections to a server it saw DOWN")
        for i in (0, 2):
            self.assertGreater(after[i], before[i])


class ExampleConfig(unittest.TestCase):
    def setUp(self):
        if not os.access(HAPROXY, os.X_OK):
            self.skipTest(f"{HAPROXY} is not installed (Debian package haproxy)")

    def test_shipped_example_is_valid(self):
        r = subprocess.run([HAPROXY, "-c", "-f", EXAMPLE], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("Configuration file is valid", r.stdout + r.stderr)

    def test_checks_send_a_v2_local_header_then_the_message(self):
        """What the example's health checks put on the wire, seen by plain listeners:
        the acknowledgement step through the traffic's port, /healthz on the metrics one."""
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp, True)
        got = {}
        replies = {"ackd_oneshot": b"ACK!", "ackd_line": b"ACK!\n",
                   "metrics": b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"}
        listeners = {}
        for name in replies:
            s = socket.socket()
            s.bind((HOSTS[0], 0))
            s.listen(8)
            s.settimeout(10)
            self.addCleanup(s.close)
            listeners[name] = s

        def capture(name, s, n):
            # One request each: complete once it ends as a message or an HTTP head does.
            for _ in range(n):
                c, _ = s.accept()
                with c:
                    c.settimeout(5)
                    data = b""
                    while not data.endswith((b"!", b"\n")) or (name != "metrics" and len(data) <= len(V2_LOCAL)):
                        chunk = c.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    got.setdefault(name, []).append(data)
                    c.sendall(replies[name])
        threads = [threading.Thread(target=capture, args=(name, s, 2 if name == "metrics" else 1), daemon=True)
                   for name, s in listeners.items()]
        for t in threads:
            t.start()
        metrics_port = listeners["metrics"].getsockname()[1]
        servers = {be: [("a", f"{HOSTS[0]}:{listeners[be].getsockname()[1]}")] for be in ("ackd_oneshot", "ackd_line")}
        lb = HAProxy(tmp, {}, servers, metrics_port)
        self.addCleanup(lb.close)
        for t in threads:
            t.join(10)
        self.assertEqual(got.get("ackd_oneshot"), [V2_LOCAL + b"Hello World!"])
        self.assertEqual(got.get("ackd_line"), [V2_LOCAL + b"ping\n"])
        self.assertEqual(got.get("metrics"), 2 * [b"GET /healthz HTTP/1.1\r\nHost: ackd\r\nConnection: close\r\n\r\n"])
        for be in servers:
            lb.wait_status((be, "a"), "UP", timeout=5, checked=True)

if __name__ == "__main__":
    tap.main()
