#!/usr/bin/env python3
"""A stop under a storm of new connections: whatever the kernel let connect is served.

Clients connect in a tight loop from a few threads while ackd gets SIGTERM. ackd
closes the listeners it bound itself; before that it seals them (new SYNs dropped,
AF_UNIX connects refused) and accepts what their queues hold. A client whose
connect() succeeded must get its whole ACK!, never a reset, EPIPE or a short reply;
one that connects after the seal fails to connect (refused, or a timeout), which is
what clients and load balancers retry, and is only counted.
"""
import errno
import os
import re
import signal
import socket
import tempfile
import threading
import time

import tap
from ackdtest import TIMEOUT_SCALE, AckdTestCase, recv_all

THREADS = 4
LOAD_BEFORE_STOP = 0.5          # seconds of connections before the SIGTERM
AFTER_EXIT = 0.3                # and after ackd has exited
MESSAGE = b"Hello World!"
TAKEN = re.compile(r"took (\d+) connections from the backlog of (\S+) at stop")


def comment(text):
    print(f"# {text}", flush=True)


class Storm:
    """THREADS clients connecting, sending MESSAGE and reading to EOF, in a loop."""

    def __init__(self, family, address):
        self.family, self.address = family, address
        self.lock = threading.Lock()
        self.counts = {"acked": 0, "refused": 0, "connect-timeout": 0, "connect-other": 0}
        self.failures = []      # (what, detail) after a successful connect()
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(THREADS)]
        for t in self.threads:
            t.start()

    def count(self, key):
        with self.lock:
            self.counts[key] += 1

    def fail(self, what, detail):
        with self.lock:
            self.failures.append((what, detail))

    def run(self):
        while not self.done.is_set():
            s = socket.socket(self.family, socket.SOCK_STREAM)
            # Long enough for a SYN dropped by the seal to be retransmitted (about 1 s).
            s.settimeout(3 * TIMEOUT_SCALE)
            try:
                try:
                    s.connect(self.address)
                except ConnectionRefusedError:
                    self.count("refused")
                    time.sleep(0.01)        # the port is closed: no busy loop until the end
                    continue
                except socket.timeout:
                    self.count("connect-timeout")
                    continue
                except OSError as e:
                    self.count("connect-other")
                    if e.errno not in (errno.EAGAIN, errno.ENOENT):      # AF_UNIX: full queue, file gone
                        self.fail("connect", repr(e))
                    time.sleep(0.01)
                    continue
                self.exchange(s)
            finally:
                s.close()

    def exchange(self, s):
        try:
            s.sendall(MESSAGE)
            reply = recv_all(s)
        except OSError as e:
            self.fail(errno.errorcode.get(e.errno, type(e).__name__), repr(e))
            return
        if reply == b"ACK!":
            self.count("acked")
        else:
            self.fail("short reply", repr(reply))

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(10 * TIMEOUT_SCALE)


class StopUnderConnectStorm(AckdTestCase):
    def storm(self, listen, family, address_of):
        d = self.start("-l", listen, "--log-level", "debug", "--drain-timeout", "10s")
        storm = Storm(family, address_of(d))
        try:
            time.sleep(LOAD_BEFORE_STOP)
            with storm.lock:
                before = storm.counts["acked"]
            d.signal(signal.SIGTERM)
            self.assertEqual(d.wait(), 0)
            time.sleep(AFTER_EXIT)
        finally:
            storm.stop()
        summary = d.summary()
        taken = [int(m.group(1)) for m in map(TAKEN.search, d.log_lines()) if m]
        comment(f"{listen}: {storm.counts}, acked before SIGTERM {before}, taken from the backlog at stop "
                f"{taken} (per worker), failures {len(storm.failures)} {storm.failures[:5]}")

        self.assertEqual(storm.failures, [])
        self.assertGreater(before, 0, "no load before the stop")
        # The stop happened under load: some connections were served after the signal.
        self.assertGreater(storm.counts["acked"], before, storm.counts)
        # Exactly the clients that got ACK! were acknowledged: none was lost on ackd's side.
        self.assertEqual(summary["acknowledged"], storm.counts["acked"], summary)
        # After the exit nothing listens: the clients ended refused (or timed out).
        self.assertGreater(storm.counts["refused"] + storm.counts["connect-timeout"], 0, storm.counts)
        # Every worker said how many it took (the log is at debug level, and small).
        self.assertTrue(taken, "no 'taken from the backlog' line at debug level")

    def test_tcp_ipv4(self):
        self.storm("127.0.0.1:0", socket.AF_INET, lambda d: d.address()[1])

    def test_tcp_ipv6(self):
        if not socket.has_ipv6 or not os.path.exists("/proc/net/if_inet6"):
            self.skipTest("no IPv6 on this host")
        self.storm("[::1]:0", socket.AF_INET6, lambda d: d.address()[1])

    def test_line_listener_is_served_or_refused_too(self):
        """A line connection taken at the stop is drained as line connections are:
        it may be closed before its message is read, but with a FIN, never a reset."""
        d = self.start("-l", "line@127.0.0.1:0", "--log-level", "debug")
        address = d.address()[1]
        resets, clean, done = [], [0], threading.Event()

        def client():
            while not done.is_set():
                with socket.socket() as s:
                    s.settimeout(3 * TIMEOUT_SCALE)
                    try:
                        s.connect(address)
                    except (ConnectionRefusedError, socket.timeout):
                        time.sleep(0.01)
                        continue
                    try:
                        s.sendall(b"m\n")
                        s.shutdown(socket.SHUT_WR)
                        data = recv_all(s)
                    except OSError as e:
                        resets.append(repr(e))
                        continue
                    if data not in (b"", b"ACK!\n"):
                        resets.append(repr(data))
                    clean[0] += 1
        threads = [threading.Thread(target=client, daemon=True) for _ in range(THREADS)]
        for t in threads:
            t.start()
        time.sleep(LOAD_BEFORE_STOP)
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait(), 0)
        time.sleep(AFTER_EXIT)
        done.set()
        for t in threads:
            t.join(10 * TIMEOUT_SCALE)
        comment(f"line: {clean[0]} clean connections, failures {resets[:5]}")
        self.assertEqual(resets, [])
        self.assertGreater(clean[0], 0)

    def test_unix(self):
        tmp = tempfile.mkdtemp(prefix="ackd-backlog-")
        path = os.path.join(tmp, "ackd.sock")
        self.addCleanup(os.rmdir, tmp)
        self.storm(f"unix:{path}", socket.AF_UNIX, lambda d: path)
        self.assertFalse(os.path.exists(path), "the socket file ackd created is removed at exit")


if __name__ == "__main__":
    tap.main()
