#!/usr/bin/env python3
"""ackc against the real ackd (and against plain sockets that misbehave on purpose).

send: both modes, from arguments and from standard input, over TCP (IPv4, IPv6)
and unix sockets; exit 3 when nothing listens, exit 1 for ERR busy, for another
ack text and for a server that never replies (--timeout); usage errors exit 2.

bench: both modes produce a text report and one JSON object with non-zero
throughput and no errors; --requests, --rate, --idle (with --source), errors by
kind, the exit status, the file descriptor limit check, the progress line only
on a terminal, and a report after SIGINT. The histogram itself is unit-tested
(test-histogram.c).
"""
import json
import os
import pty
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time


import tap
from ackdtest import INSTRUMENTED, SOURCE_ROOT, AckdTestCase, free_port

ACKC = os.environ.get("ACKC_BIN") or os.path.join(SOURCE_ROOT, "build", "src", "client", "ackc")
BUILD_ROOT = os.environ.get("ACKD_BUILD_ROOT") or os.path.join(SOURCE_ROOT, "build")

ERROR_KINDS = ["refused", "reset", "timeout", "closed", "wrong_reply", "busy", "err", "other"]


def ackc(*args, input=None, timeout=60, **kw):
    return subprocess.run([ACKC, *map(str, args)], input=input, capture_output=True, text=True, timeout=timeout,
                          **kw)



def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class SilentListener:
    """Accepts (through the kernel's backlog) and never replies."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]

    def close(self):
        self.sock.close()


class LineServer(threading.Thread):
    """A Redis-like line server: answers each line with `reply` (for --message/--expect)."""

    def __init__(self, reply):
        super().__init__(daemon=True)
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        buf = b""
        with c:
            while True:
                try:
                    data = c.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                n = buf.count(b"\n")
                buf = buf[buf.rfind(b"\n") + 1:] if n else buf
                if n:
                    c.sendall(self.reply * n)

    def close(self):
        self.sock.close()


class AckcTestCase(AckdTestCase):
    def daemon(self, *args):
        """ackd with a oneshot listener (0) and a line listener (1) on loopback."""
        return self.start("-t", "1", "-l", "127.0.0.1:0", "-l", "line@127.0.0.1:0", *args)

    def target(self, d, i):
        return ["-H", "127.0.0.1", "-p", d.port(i)]

    def hold_only_slot(self, d):
        """Uses the daemon's only connection (--max-connections 1) and keeps it."""
        s = d.connect(1)
        s.sendall(b"hold\n")
        self.assertEqual(s.recv(16), b"ACK!\n")
        self.addCleanup(s.close)
        return s

    def bench_json(self, *args, status=0, **kw):
        r = ackc("bench", "--json", *args, **kw)
        self.assertEqual(r.returncode, status, r.stdout + r.stderr)
        self.assertEqual(r.stdout.count("\n"), 1, r.stdout)
        report = json.loads(r.stdout)
        self.assertEqual(list(report), ["mode", "target", "connections", "depth", "threads", "message_bytes",
                                        "rate_per_s", "duration_s", "interrupted", "sent", "requests", "connected",
                                        "unsent", "throughput_per_s", "latency_us", "errors", "errors_total",
                                        "idle"])
        self.assertEqual(list(report["errors"]), ERROR_KINDS)
        self.assertEqual(list(report["latency_us"]), ["p50", "p90", "p99", "p99_9", "max", "mean"])
        self.assertEqual(report["errors_total"], sum(report["errors"].values()))
        return report

    def assertHealthy(self, report):
        self.assertGreater(report["requests"], 0)
        self.assertGreater(report["throughput_per_s"], 0)
        self.assertEqual(report["errors_total"], 0, report)
        lat = report["latency_us"]
        self.assertTrue(0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99_9"] <= lat["max"], lat)


class SendTests(AckcTestCase):
    def test_oneshot_from_arguments(self):
        d = self.daemon("-v")
        r = ackc(*self.target(d, 0), "Hello World!", "second")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "ACK!\nACK!\n", ""))
        d.wait_log(r'Received: "Hello World!"')
        d.wait_log(r'Received: "second"')

    def test_oneshot_from_stdin(self):
        d = self.daemon("-v")
        r = ackc(*self.target(d, 0), input="a\nb\nlast")
        self.assertEqual((r.returncode, r.stdout), (0, "ACK!\n" * 3), r.stderr)
        d.wait_log(r'Received: "last"')

    def test_line_from_arguments(self):
        d = self.daemon()
        r = ackc("-m", "line", *self.target(d, 1), "one", "two", "three")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "ACK!\n" * 3, ""))

    def test_line_from_stdin(self):
        d = self.daemon()
        r = ackc("-m", "line", *self.target(d, 1), input="a\nb\n")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "ACK!\n" * 2, ""))

    def test_line_pipelines_many_lines_in_order(self):
        d = self.daemon()
        # More than the window of 4096 outstanding messages, empty lines included.
        lines = "".join(f"message {i}\n" if i % 7 else "\n" for i in range(10000))
        r = ackc("-m", "line", *self.target(d, 1), input=lines)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "ACK!\n" * 10000)

    def test_default_host_is_localhost(self):
        d = self.start("-l", ":0")
        r = ackc("-p", d.port(0), "hi")
        self.assertEqual((r.returncode, r.stdout), (0, "ACK!\n"), r.stderr)

    def test_ipv6(self):
        if not have_ipv6():
            self.skipTest("no IPv6 loopback")
        d = self.start("-l", "[::1]:0", "-l", "line@[::1]:0")
        r = ackc("-H", "::1", "-p", d.port(0), "hi")
        self.assertEqual((r.returncode, r.stdout), (0, "ACK!\n"), r.stderr)
        r = ackc("-H", "[::1]", "-p", d.port(1), "-m", "line", "a", "b")
        self.assertEqual((r.returncode, r.stdout), (0, "ACK!\n" * 2), r.stderr)

    def test_unix_socket(self):
        path = os.path.join(tempfile.mkdtemp(), "ackd.sock")
        self.addCleanup(shutil.rmtree, os.path.dirname(path))
        self.start("-l", f"line@unix:{path}")
        r = ackc("-u", path, "-m", "line", input="x\ny\n")
        self.assertEqual((r.returncode, r.stdout), (0, "ACK!\n" * 2), r.stderr)

    def test_quiet_prints_nothing(self):
        d = self.daemon()
        r = ackc("-q", *self.target(d, 0), "hi")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "", ""))

    def test_closed_port_exits_3_with_the_reason(self):
        r = ackc("-H", "127.0.0.1", "-p", free_port(), "hi")
        self.assertEqual(r.returncode, 3)
        self.assertRegex(r.stderr, r"^ackc: cannot connect to 127\.0\.0\.1 port \d+: Connection refused\n$")
        r = ackc("-m", "line", "-H", "127.0.0.1", "-p", free_port(), "hi")
        self.assertEqual(r.returncode, 3)
        self.assertIn("Connection refused", r.stderr)
        r = ackc("-u", "/nonexistent/ackd.sock", "hi")
        self.assertEqual(r.returncode, 3)
        self.assertIn("No such file or directory", r.stderr)

    def test_busy_server_exits_1(self):
        d = self.daemon("--max-connections", "1")
        self.hold_only_slot(d)
        r = ackc(*self.target(d, 0), "hello")
        self.assertEqual((r.returncode, r.stdout), (1, ""), r.stderr)
        self.assertEqual(r.stderr, 'ackc: reply to "hello": ERR busy\n')
        r = ackc("-m", "line", *self.target(d, 1), "first", "second")
        self.assertEqual(r.returncode, 1)
        self.assertIn('ackc: reply to "first": ERR busy\n', r.stderr)
        self.assertIn('"second"', r.stderr)

    def test_line_busy_is_server_busy_however_late_the_input(self):
        # ackd says ERR busy as it accepts, before any message: whether standard input
        # comes late (nothing written until ackc is done: it must not wait for input to
        # tell) or at once (written before ackc starts), ackc reports the server busy for
        # the connection. (The held slot must outlast 40 slow runs, under valgrind say.)
        d = self.daemon("--max-connections", "1", "--idle-timeout", "10min")
        self.hold_only_slot(d)
        busy = f"ackc: server busy: 127.0.0.1 port {d.port(1)} answered ERR busy\n"
        cmd = [ACKC, "-m", "line", *map(str, self.target(d, 1))]
        for _ in range(20):
            p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
            try:
                p.wait(timeout=30)
            finally:
                out, err = p.communicate("a\n", timeout=30)
            self.assertEqual((p.returncode, out, err), (1, "", busy))

            r_fd, w_fd = os.pipe()
            os.write(w_fd, b"a\n")
            os.close(w_fd)
            try:
                r = subprocess.run(cmd, stdin=r_fd, capture_output=True, text=True, timeout=30)
            finally:
                os.close(r_fd)
            self.assertEqual((r.returncode, r.stdout), (1, ""), r.stderr)
            # Whether "a" was written before ERR busy was read is up to the scheduler;
            # if it was, its reply is named too.
            self.assertIn(r.stderr, (busy, busy + 'ackc: reply to "a": ERR busy\n'))
        # Unless ERR busy is the reply asked for.
        r = ackc("-m", "line", "--expect", "ERR busy\\n", *self.target(d, 1), "a")
        self.assertEqual((r.returncode, r.stdout, r.stderr), (0, "ERR busy\n", ""))

    def test_other_ack_text_exits_1(self):
        d = self.daemon("--ack", "OK")
        r = ackc(*self.target(d, 0), "hello")
        self.assertEqual((r.returncode, r.stdout), (1, ""))
        self.assertEqual(r.stderr, 'ackc: reply to "hello": "OK", expected "ACK!"\n')
        r = ackc("-m", "line", *self.target(d, 1), "hello")
        self.assertEqual(r.returncode, 1)
        self.assertIn('"OK\\n", expected "ACK!\\n"', r.stderr)
        # Told what to expect, it is satisfied.
        r = ackc("--ack", "OK", *self.target(d, 0), "hello")
        self.assertEqual((r.returncode, r.stdout), (0, "OK\n"), r.stderr)
        r = ackc("--ack", "OK", "-m", "line", *self.target(d, 1), "hello")
        self.assertEqual((r.returncode, r.stdout), (0, "OK\n"), r.stderr)

    def test_line_reply_cut_short_by_eof_is_reported_once(self):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        self.addCleanup(srv.close)

        def serve():
            c, _ = srv.accept()
            with c:
                c.recv(64)
                c.sendall(b"AC")

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        r = ackc("-m", "line", "-H", "127.0.0.1", "-p", srv.getsockname()[1], "hello")
        t.join()
        self.assertEqual((r.returncode, r.stdout), (1, ""))
        self.assertEqual(r.stderr, 'ackc: reply to "hello": "AC", expected "ACK!\\n"\n')

    def test_timeout_against_a_listener_that_never_replies(self):
        s = SilentListener()
        self.addCleanup(s.close)
        for mode in ("oneshot", "line"):
            start = time.monotonic()
            r = ackc("-m", mode, "--timeout", "0.5", "-H", "127.0.0.1", "-p", s.port, "hello")
            took = time.monotonic() - start
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertEqual(r.stderr, 'ackc: no reply to "hello" within 500ms\n')
            self.assertGreaterEqual(took, 0.45)
            self.assertLess(took, 3)

    def test_message_and_expect_speak_other_protocols(self):
        srv = LineServer(b"+PONG\r\n")
        self.addCleanup(srv.close)
        # Bytes, not text: the reply's CR must reach stdout as it is.
        r = subprocess.run([ACKC, "-m", "line", "-H", "127.0.0.1", "-p", str(srv.port), "--expect", "+PONG\\r\\n",
                            "--message", "PING", "PING"], capture_output=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout), (0, b"+PONG\r\n" * 2), r.stderr)

    def test_usage_errors_exit_2_naming_the_option(self):
        for args, pattern in [
            (["-p", "abc", "x"], r"--port: invalid value 'abc'"),
            (["-p", "70000", "x"], r"--port: value '70000' out of range"),
            (["-m", "udp", "x"], r"--mode: invalid value 'udp'"),
            (["--timeout", "soon", "x"], r"--timeout"),
            (["--frobnicate"], r"unknown option '--frobnicate'"),
            (["--depth", "2", "x"], r"unknown option '--depth'"),
            (["bench", "-c", "0"], r"--connections: value '0' out of range"),
            (["bench", "-d", "1", "-n", "5"], r"--duration cannot be combined with --requests"),
            (["bench", "hello"], r"unexpected argument 'hello'"),
        ]:
            r = ackc(*args)
            self.assertEqual(r.returncode, 2, f"{args}: {r.stderr}")
            self.assertRegex(r.stderr.splitlines()[0], "^ackc: " + pattern)
            self.assertEqual(len(r.stderr.splitlines()), 2, r.stderr)       # the error, and "Try ..."


class DocumentationTests(AckcTestCase):
    def help_options(self, *command):
        r = ackc(*command, "--help")
        self.assertEqual(r.returncode, 0)
        for line in r.stdout.splitlines():
            self.assertLessEqual(len(line), 79, line)
        return set(re.findall(r"^  (?:-\w, )?\s*--([a-z-]+)", r.stdout, re.M))

    def test_help_and_version(self):
        self.assertIn("connections", self.help_options("bench"))
        self.assertIn("quiet", self.help_options())
        r = ackc("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^ackc \d+\.\d+\.\d+\n$")

    def test_man_page_documents_every_option_and_exit_status(self):
        with open(os.path.join(SOURCE_ROOT, "man", "ackc.1.scd")) as f:
            man = f.read()
        for opt in self.help_options() | self.help_options("bench"):
            self.assertIn(f"*--{opt}*", man, f"ackc(1) does not document --{opt}")
        for key in ERROR_KINDS + ["throughput_per_s", "latency_us", "p99_9", "errors_total", "answered"]:
            self.assertIn(key, man, f"ackc(1) does not document the JSON key {key}")
        self.assertIn("# EXIT STATUS", man)

    def test_man_page_is_lint_clean(self):
        page = os.path.join(BUILD_ROOT, "man", "ackc.1")
        if not shutil.which("mandoc"):
            self.skipTest("mandoc not installed")
        if not os.path.exists(page):
            self.skipTest("man pages not built (scdoc missing?)")
        r = subprocess.run(["mandoc", "-Tlint", page], capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))


class BenchTests(AckcTestCase):
    def test_oneshot_text_report(self):
        d = self.daemon()
        r = ackc("bench", "-m", "oneshot", "-c", "4", "-d", "1", *self.target(d, 0))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr, "")         # no progress line when stderr is not a terminal
        self.assertRegex(r.stdout, r"connections \d+ verified, \d+ sent")
        self.assertRegex(r.stdout, r"throughput  [1-9][\d.]* connections/s")
        self.assertRegex(r.stdout, r"latency     p50 \S+  p90 \S+  p99 \S+  p99\.9 \S+\n {14}max \S+  mean \S+\n")
        for line in r.stdout.splitlines():
            self.assertLessEqual(len(line), 79, line)
        self.assertIn("errors      none", r.stdout)

    def test_oneshot_json(self):
        d = self.daemon()
        report = self.bench_json("-m", "oneshot", "-c", "4", "-d", "1", *self.target(d, 0))
        self.assertHealthy(report)
        self.assertEqual(report["mode"], "oneshot")
        self.assertEqual(report["connections"], 4)
        self.assertGreaterEqual(report["duration_s"], 1.0)
        self.assertEqual(report["requests"], report["sent"])
        self.assertEqual(report["connected"], report["requests"])
        self.assertIsNone(report["idle"])

    def test_line_text_report(self):
        d = self.daemon()
        r = ackc("bench", "-m", "line", "-c", "4", "--depth", "8", "-d", "1", *self.target(d, 1))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("4 connections x depth 8", r.stdout)
        self.assertRegex(r.stdout, r"throughput  [1-9][\d.]* requests/s")
        self.assertIn("errors      none", r.stdout)

    def test_line_json(self):
        d = self.daemon()
        report = self.bench_json("-m", "line", "-c", "4", "--depth", "8", "-t", "2", "-d", "1", *self.target(d, 1))
        self.assertHealthy(report)
        self.assertEqual((report["mode"], report["depth"], report["threads"]), ("line", 8, 2))
        self.assertEqual(report["requests"], report["sent"])
        self.assertEqual(report["connected"], 4)

    def test_requests_are_exact(self):
        d = self.daemon()
        report = self.bench_json("-m", "line", "-c", "3", "--depth", "4", "-n", "1000", *self.target(d, 1))
        self.assertEqual((report["sent"], report["requests"]), (1000, 1000))
        report = self.bench_json("-m", "oneshot", "-c", "3", "-n", "200", *self.target(d, 0))
        self.assertEqual((report["sent"], report["requests"], report["connected"]), (200, 200, 200))

    def test_rate_follows_the_schedule(self):
        d = self.daemon()
        report = self.bench_json("-m", "line", "-c", "2", "--rate", "2000", "-d", "1", *self.target(d, 1))
        self.assertHealthy(report)
        self.assertEqual(report["rate_per_s"], 2000)
        self.assertEqual(report["sent"] + report["unsent"], 2000)
        # A server under valgrind cannot answer 2000 a second; the schedule stands all the same.
        self.assertGreaterEqual(report["requests"], 1 if INSTRUMENTED else 1900)
        report = self.bench_json("-m", "oneshot", "-c", "4", "--rate", "500", "-d", "1", *self.target(d, 0))
        self.assertEqual(report["sent"] + report["unsent"], 500)
        self.assertEqual(report["errors_total"], 0)

    def test_idle_2000_all_answered(self):
        d = self.daemon()
        report = self.bench_json("-m", "line", "--idle", "2000", "-d", "1", *self.target(d, 1))
        self.assertEqual(report["idle"]["connections"], 2000)
        self.assertEqual(report["idle"]["connected"], 2000)
        self.assertEqual(report["idle"]["answered"], 2000)
        self.assertEqual(report["idle"]["failed"], 0)
        self.assertEqual(report["errors_total"], 0)
        self.assertGreaterEqual(report["duration_s"], 1.0)

    def test_idle_oneshot_with_sources(self):
        d = self.daemon("-v")
        report = self.bench_json("-m", "oneshot", "--idle", "200", "-d", "0.2", "--source", "127.0.0.2",
                                 "--source", "127.0.0.3", *self.target(d, 0))
        self.assertEqual(report["idle"]["answered"], 200)
        d.wait_log(r"Accepted connection from 127\.0\.0\.2:")
        d.wait_log(r"Accepted connection from 127\.0\.0\.3:")
        self.assertNotIn("Accepted connection from 127.0.0.1:", d.log_text())

    def test_idle_that_does_not_fit_the_fd_limit(self):
        def limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (500, 1000))
        r = ackc("bench", "--idle", "2000", "-H", "127.0.0.1", "-p", free_port(), preexec_fn=limit)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("the limit is 1000: at most 983 connections fit", r.stderr)

    def test_message_and_expect_bench_other_servers(self):
        srv = LineServer(b"+PONG\r\n")
        self.addCleanup(srv.close)
        report = self.bench_json("-m", "line", "-c", "2", "--depth", "4", "-n", "400", "--message", "PING",
                                 "--expect", "+PONG\\r\\n", "-H", "127.0.0.1", "-p", srv.port)
        self.assertEqual((report["requests"], report["errors_total"]), (400, 0))

    def test_wrong_reply_is_an_error_and_not_throughput(self):
        d = self.daemon("--ack", "OK")
        for mode, i in (("oneshot", 0), ("line", 1)):
            report = self.bench_json("-m", mode, "-c", "2", "-d", "0.5", *self.target(d, i), status=1)
            self.assertGreater(report["errors"]["wrong_reply"], 0)
            self.assertEqual(report["errors_total"], report["errors"]["wrong_reply"])
            self.assertEqual((report["requests"], report["throughput_per_s"]), (0, 0))
            self.assertIsNone(report["latency_us"]["p50"])

    def test_busy_is_counted(self):
        d = self.daemon("--max-connections", "1")
        self.hold_only_slot(d)
        for mode, i in (("oneshot", 0), ("line", 1)):
            report = self.bench_json("-m", mode, "-c", "2", "-d", "0.5", *self.target(d, i), status=1)
            self.assertGreater(report["errors"]["busy"], 0)
            self.assertEqual(report["requests"], 0)

    def test_nothing_listening_exits_3(self):
        report = self.bench_json("-c", "2", "-d", "0.3", "-H", "127.0.0.1", "-p", free_port(), status=3)
        self.assertGreater(report["errors"]["refused"], 0)
        self.assertEqual((report["connected"], report["requests"]), (0, 0))

    def test_timeout_is_counted(self):
        s = SilentListener()
        self.addCleanup(s.close)
        report = self.bench_json("-m", "line", "-c", "2", "-d", "0.3", "--timeout", "0.3", "-H", "127.0.0.1", "-p",
                                 s.port, status=1)
        self.assertEqual(report["errors"]["timeout"], 2)
        self.assertEqual(report["requests"], 0)

    def test_unix_socket(self):
        path = os.path.join(tempfile.mkdtemp(), "ackd.sock")
        self.addCleanup(shutil.rmtree, os.path.dirname(path))
        self.start("-l", f"line@unix:{path}")
        report = self.bench_json("-m", "line", "-c", "2", "--depth", "4", "-d", "0.5", "-u", path)
        self.assertHealthy(report)
        self.assertEqual(report["target"], f"unix:{path}")

    def test_progress_line_only_on_a_terminal(self):
        d = self.daemon()
        master, slave = pty.openpty()
        p = subprocess.Popen([ACKC, "bench", "-m", "line", "-c", "2", "-d", "2.5", *map(str, self.target(d, 1))],
                             stdout=subprocess.PIPE, stderr=slave, text=True)
        os.close(slave)
        progress = b""
        while True:
            ready, _, _ = select.select([master], [], [], 10)
            if not ready:
                break
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            progress += chunk
        out, _ = p.communicate(timeout=10)
        os.close(master)
        self.assertEqual(p.returncode, 0)
        text = progress.decode()
        self.assertRegex(text, r"\r\[   1s\] \d+ verified, \d+/s, 0 errors, p99 \S+")
        self.assertRegex(text, r"\[   2s\]")
        self.assertTrue(text.endswith("\r\x1b[K"), repr(text[-40:]))      # cleared before the report
        self.assertIn("errors      none", out)

    def test_sigint_stops_and_reports(self):
        d = self.daemon()
        p = subprocess.Popen([ACKC, "bench", "--json", "-m", "line", "-c", "2", "-d", "60",
                              *map(str, self.target(d, 1))], stdout=subprocess.PIPE, text=True)
        time.sleep(1)
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 0)
        report = json.loads(out)
        self.assertTrue(report["interrupted"])
        self.assertLess(report["duration_s"], 10)
        self.assertHealthy(report)


if __name__ == "__main__":
    tap.main()
