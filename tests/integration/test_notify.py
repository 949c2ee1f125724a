#!/usr/bin/env python3
"""sd_notify: what ackd tells systemd, read from a NOTIFY_SOCKET of our own."""
import os
import re
import signal
import socket
import tempfile
import time

import tap
from ackdtest import Ackd, AckdTestCase, recv_all


class NotifyListener:
    def __init__(self):
        self.dir = tempfile.mkdtemp()
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def wait_for(self, pattern, timeout=10):
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        while True:
            for m in self.messages:
                if rx.search(m):
                    return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no notification matching {pattern!r}; got {self.messages}")
            self.sock.settimeout(left)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass

    def close(self):
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.dir)


class NotifyTests(AckdTestCase):
    def setUp(self):
        if "+systemd" not in os.popen(f"{os.environ.get('ACKD_BIN', 'ackd')} --version").read():
            self.skipTest("built without systemd support")
        self.n = NotifyListener()
        self.addCleanup(self.n.close)

    def start_notified(self, *args, env=None):
        e = {"NOTIFY_SOCKET": self.n.path}
        e.update(env or {})
        d = Ackd(*args, env=e)
        self.addCleanup(d.__exit__)
        return d

    def test_ready_then_status_with_live_figures(self):
        d = self.start_notified("-l", "127.0.0.1:0")
        self.n.wait_for(r"^READY=1$")
        s = d.connect()
        s.sendall(b"x")
        self.assertEqual(recv_all(s), b"ACK!")
        m = self.n.wait_for(r"^STATUS=Serving \d+ connections; accepted 1, acknowledged 1, errors 0$", timeout=5)
        self.assertTrue(m)

    def test_reload_sends_reloading_with_timestamp_then_ready(self):
        d = self.start_notified("-l", "127.0.0.1:0")
        self.n.wait_for(r"^READY=1$")
        self.n.messages.clear()
        d.signal(signal.SIGHUP)
        m = self.n.wait_for(r"^RELOADING=1$")
        self.assertRegex(m, r"(?m)^MONOTONIC_USEC=\d+$")
        usec = int(re.search(r"MONOTONIC_USEC=(\d+)", m).group(1))
        self.assertLess(abs(usec / 1e6 - time.clock_gettime(time.CLOCK_MONOTONIC)), 5)
        self.n.wait_for(r"^READY=1$")

    def test_stop_sends_stopping(self):
        d = self.start_notified("-l", "127.0.0.1:0")
        self.n.wait_for(r"^READY=1$")
        d.signal(signal.SIGTERM)
        self.n.wait_for(r"^STOPPING=1$")
        self.assertEqual(d.wait(), 0)

    def test_long_drain_extends_the_stop_timeout(self):
        d = self.start_notified("-l", "127.0.0.1:0", "--drain-timeout", "3s", "--idle-timeout", "60s")
        self.n.wait_for(r"^READY=1$")
        idle = d.connect()
        time.sleep(1.5)     # accepted, waiting for its message: the drain will wait for it
        d.signal(signal.SIGTERM)
        m = self.n.wait_for(r"^EXTEND_TIMEOUT_USEC=\d+$", timeout=5)
        self.assertGreater(int(m.split("=")[1]), 0)
        self.assertEqual(d.wait(), 0)
        idle.close()

    def test_watchdog_pings_while_workers_run(self):
        self.start_notified("-l", "127.0.0.1:0", env={"WATCHDOG_USEC": "400000"})
        self.n.wait_for(r"^READY=1$")
        start = time.monotonic()
        self.n.messages.clear()
        self.n.wait_for(r"^WATCHDOG=1$", timeout=2)
        self.n.messages.clear()
        self.n.wait_for(r"^WATCHDOG=1$", timeout=2)
        self.assertLess(time.monotonic() - start, 2)

    def test_no_watchdog_pings_while_stopped(self):
        d = self.start_notified("-l", "127.0.0.1:0", env={"WATCHDOG_USEC": "400000"})
        self.n.wait_for(r"^WATCHDOG=1$")
        d.signal(signal.SIGSTOP)
        time.sleep(0.3)
        self.n.messages.clear()
        try:
            with self.assertRaises(AssertionError):
                self.n.wait_for(r"^WATCHDOG=1$", timeout=1.5)
        finally:
            d.signal(signal.SIGCONT)
        self.n.wait_for(r"^WATCHDOG=1$", timeout=3)


if __name__ == "__main__":
    tap.main()
