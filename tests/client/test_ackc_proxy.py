#!/usr/bin/env python3
"""ackc --proxy against the real ackd's +proxy listeners, and against a recording server.

The recording server checks the bytes ackc sends, header and message, against
headers built here byte by byte from HAProxy's proxy-protocol.txt (the test does not
trust the builders it checks), with the addresses the server itself saw. The ackd
cases check what ackd makes of them: the claimed client address in "Accepted
connection from CLIENT via PEER", the connection's own addresses by default, LOCAL
and unix sockets, and ackc bench through +proxy listeners in every workload with
zero errors and one header per connection.
"""
import os
import re
import shutil
import socket
import struct
import tempfile
import threading

import tap
from ackdtest import AckdTestCase, wait_until
from test_ackc import ackc, have_ipv6

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
CLAIMED = "203.0.113.7:5555"
CLAIMED_RE = r"203\.0\.113\.7:5555"


def v2(command, family, block=b""):
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(block)) + block


def v2_tcp4(src, dst, sport, dport):
    return v2(1, 0x11, socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport))


def v2_tcp6(src, dst, sport, dport):
    return v2(1, 0x21, socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
              + struct.pack("!HH", sport, dport))


class RecordingServer(threading.Thread):
    """Takes each connection's bytes until the client stops sending (a pause), or
    until `want` bytes, answers `reply` and closes; keeps (peer, bytes) per connection."""

    def __init__(self, reply=b"ACK!", want=None, family=socket.AF_INET, host="127.0.0.1"):
        super().__init__(daemon=True)
        self.reply, self.want = reply, want
        self.sock = socket.socket(family)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.got = []
        self.lock = threading.Lock()
        self.start()

    def run(self):
        while True:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c, peer), daemon=True).start()

    def serve(self, c, peer):
        data = b""
        with c:
            c.settimeout(0.3)
            while self.want is None or len(data) < self.want:
                try:
                    chunk = c.recv(65536)
                except socket.timeout:
                    break
                if not chunk:
                    break
                data += chunk
            with self.lock:
                self.got.append((peer, data))
            c.sendall(self.reply)

    def close(self):
        self.sock.close()


class WireTests(AckdTestCase):
    """The exact bytes: header first, then the message, addresses as the server saw them."""

    def server(self, **kw):
        s = RecordingServer(**kw)
        self.addCleanup(s.close)
        return s

    def test_send_v1_v2_local_bytes(self):
        s = self.server()
        for args in (["--proxy", "v1", "--proxy-source", CLAIMED], ["--proxy", "v2"], ["--proxy", "local"]):
            r = ackc("-H", "127.0.0.1", "-p", s.port, *args, "hello")
            self.assertEqual((r.returncode, r.stdout), (0, "ACK!\n"), r.stderr)
        (p1, d1), (p2, d2), (_, d3) = s.got
        self.assertEqual(d1, f"PROXY TCP4 203.0.113.7 127.0.0.1 5555 {s.port}\r\nhello".encode())
        # By default the connection's own address: what accept() returned on this side.
        self.assertEqual(d2, v2_tcp4(p2[0], "127.0.0.1", p2[1], s.port) + b"hello")
        self.assertEqual(d3, v2(0, 0x00) + b"hello")

    def test_line_header_then_messages(self):
        s = self.server(reply=b"ACK!\nACK!\n", want=None)
        r = ackc("-H", "127.0.0.1", "-p", s.port, "-m", "line", "--proxy", "v2", "--proxy-source",
                 "[2001:db8::7]:5555", "a", "b")
        self.assertEqual((r.returncode, r.stdout), (0, "ACK!\nACK!\n"), r.stderr)
        # An IPv6 client over an IPv4 connection: TCP6, the destination IPv4-mapped.
        self.assertEqual(s.got[0][1], v2_tcp6("2001:db8::7", "::ffff:127.0.0.1", 5555, s.port) + b"a\nb\n")

    def test_bench_oneshot_every_connection_its_own_header(self):
        s = self.server()
        r = ackc("bench", "-H", "127.0.0.1", "-p", s.port, "--proxy", "v1", "-n", "20", "-c", "4",
                 "--message", "Hello World!")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(len(s.got), 20)
        for peer, data in s.got:
            self.assertEqual(data, f"PROXY TCP4 127.0.0.1 127.0.0.1 {peer[1]} {s.port}\r\nHello World!".encode())
        self.assertEqual(len({peer for peer, _ in s.got}), 20)


class AckdTests(AckdTestCase):
    def setUp(self):
        self.d = self.start("-v", "-t", "1", "-l", "+proxy@127.0.0.1:0", "-l", "line+proxy@127.0.0.1:0",
                            "--proxy-timeout", "500ms")

    def target(self, i):
        return ["-H", "127.0.0.1", "-p", self.d.port(i)]

    def accepted(self, pattern):
        return [m for m in (re.search(pattern, line) for line in self.d.log_lines()) if m]

    def test_v1_claimed_source_is_logged(self):
        r = ackc(*self.target(0), "--proxy", "v1", "--proxy-source", CLAIMED, "Hello World!")
        self.assertEqual((r.returncode, r.stdout), (0, "ACK!\n"), r.stderr)
        self.d.wait_log(rf"Accepted connection from {CLAIMED_RE} via 127\.0\.0\.1:\d+$")
        self.d.wait_log(rf'Received: "Hello World!" from {CLAIMED_RE}$')

    def test_v2_line_claimed_source_is_logged(self):
        r = ackc(*self.target(1), "-m", "line", "--proxy", "v2", "--proxy-source", CLAIMED, "a", "b", "c")
        self.assertEqual((r.returncode, r.stdout), (0, "ACK!\n" * 3), r.stderr)
        self.d.wait_log(rf"Accepted connection from {CLAIMED_RE} via 127\.0\.0\.1:\d+$")
        self.d.wait_log(rf'Received: "c" from {CLAIMED_RE}$')

    def test_default_source_is_the_connections_own(self):
        for i, mode, version in ((0, "oneshot", "v1"), (1, "line", "v2")):
            r = ackc(*self.target(i), "-m", mode, "--proxy", version, "x")
            self.assertEqual(r.returncode, 0, r.stderr)
        own = r"Accepted connection from 127\.0\.0\.1:(\d+) via 127\.0\.0\.1:(\d+)$"
        pairs = wait_until(lambda: len(self.accepted(own)) == 2 and self.accepted(own))
        self.assertTrue(pairs, self.d.log_text())
        for p in pairs:
            self.assertEqual(p.group(1), p.group(2))

    def test_ipv6_claimed_over_ipv4(self):
        r = ackc(*self.target(0), "--proxy", "v2", "--proxy-source", "[2001:db8::7]:5555", "hi")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.d.wait_log(r"Accepted connection from \[2001:db8::7\]:5555 via 127\.0\.0\.1:\d+$")
        r = ackc(*self.target(1), "-m", "line", "--proxy", "v1", "--proxy-source", "[2001:db8::8]:1", "hi")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.d.wait_log(r"Accepted connection from \[2001:db8::8\]:1 via 127\.0\.0\.1:\d+$")

    def test_ipv6_listener(self):
        if not have_ipv6():
            self.skipTest("no IPv6 loopback")
        d = self.start("-v", "-l", "+proxy@[::1]:0")
        for version, claimed, shown in (("v1", "[2001:db8::9]:9", r"\[2001:db8::9\]:9"),
                                        ("v2", "192.0.2.9:9", r"192\.0\.2\.9:9")):
            r = ackc("-H", "::1", "-p", d.port(0), "--proxy", version, "--proxy-source", claimed, "hi")
            self.assertEqual(r.returncode, 0, r.stderr)
            d.wait_log(rf"Accepted connection from {shown} via \[::1\]:\d+$")
        r = ackc("-H", "::1", "-p", d.port(0), "--proxy", "v2", "hi")
        self.assertEqual(r.returncode, 0, r.stderr)
        m = d.wait_log(r"Accepted connection from \[::1\]:(\d+) via \[::1\]:(\d+)$")
        self.assertEqual(m.group(1), m.group(2))

    def test_local_keeps_the_connections_own_address(self):
        r = ackc(*self.target(0), "--proxy", "local", "hi")
        self.assertEqual(r.returncode, 0, r.stderr)
        m = self.d.wait_log(r"Accepted connection from 127\.0\.0\.1:(\d+) \(PROXY header without addresses\)$")
        self.d.wait_log(rf'Received: "hi" from 127\.0\.0\.1:{m.group(1)}$')

    def test_without_proxy_the_listener_refuses(self):
        r = ackc(*self.target(0), "hi")
        self.assertEqual(r.returncode, 1)
        self.d.wait_log(r"bad PROXY header")
        report_r = ackc("bench", *self.target(0), "-n", "5", "-c", "1", "--json")
        self.assertEqual(report_r.returncode, 1, report_r.stdout)

    def test_bench_oneshot_and_line_zero_errors_one_header_each(self):
        n = 300
        r = ackc("bench", *self.target(0), "--proxy", "v2", "--proxy-source", CLAIMED, "-n", n, "-c", 10)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("errors      none", r.stdout)
        self.assertIn(f"connections {n} verified", r.stdout)
        claimed = rf"Accepted connection from {CLAIMED_RE} via 127\.0\.0\.1:(\d+)$"
        self.assertTrue(wait_until(lambda: len(self.accepted(claimed)) >= n), self.d.log_text()[-2000:])
        # One header per connection, reconnects included: n connections, each its own port.
        self.assertEqual(len(self.accepted(claimed)), n)
        self.assertEqual(len({m.group(1) for m in self.accepted(claimed)}), n)

        r = ackc("bench", *self.target(1), "-m", "line", "--proxy", "v1", "-c", 4, "--depth", 8, "-n", 2000)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("requests    2000 verified", r.stdout)
        own = r"Accepted connection from 127\.0\.0\.1:(\d+) via 127\.0\.0\.1:(\d+)$"
        self.assertTrue(wait_until(lambda: len(self.accepted(own)) >= 4))
        self.assertEqual([m.group(1) == m.group(2) for m in self.accepted(own)], [True] * 4)

    def test_bench_rate_and_idle_send_the_header_at_once(self):
        # Held for longer than --proxy-timeout: the header must not wait for the message.
        for i, mode in ((0, "oneshot"), (1, "line")):
            r = ackc("bench", *self.target(i), "-m", mode, "--proxy", "v2", "--idle", 20, "-d", "1.2",
                     "--message", "x")
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("answered    20 of 20 (all)", r.stdout)
        # A schedule slower than --proxy-timeout per connection, in line mode.
        r = ackc("bench", *self.target(1), "-m", "line", "--proxy", "v1", "-c", 4, "--rate", 2, "-d", "1.5")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("errors      none", r.stdout)
        self.assertNotIn("closed a connection that sent no complete PROXY header", self.d.log_text())

    def test_unix_sockets(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        one, line = os.path.join(tmp, "o.sock"), os.path.join(tmp, "l.sock")
        d = self.start("-v", "-l", f"+proxy@unix:{one}", "-l", f"line+proxy@unix:{line}")
        for version, log in (("v1", "without addresses"), ("v2", "from a unix socket"), ("local", "without addresses")):
            start = len(d.log_lines())
            r = ackc("-u", one, "--proxy", version, "hi")
            self.assertEqual(r.returncode, 0, r.stderr)
            d.wait_log(rf"Accepted connection from unix peer pid \d+ \(PROXY header {log}\)$", start=start)
            r = ackc("bench", "-u", line, "-m", "line", "--proxy", version, "-c", 2, "-n", 100)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_usage_errors_exit_2(self):
        for args, needle in ((["--proxy", "v3"], "--proxy: invalid value 'v3'"),
                             (["--proxy-source", CLAIMED], "--proxy-source needs --proxy"),
                             (["--proxy", "v2", "--proxy-source", "203.0.113.7"], "--proxy-source: invalid value"),
                             (["--proxy", "local", "--proxy-source", CLAIMED], "--proxy local")):
            for cmd in ([], ["bench"]):
                r = ackc(*cmd, *self.target(0), *args, *([] if cmd else ["x"]))
                self.assertEqual(r.returncode, 2, (args, r.stderr))
                self.assertIn(needle, r.stderr)


if __name__ == "__main__":
    tap.main()
