#!/usr/bin/env python3
"""Start, reload, stop and restart: nothing acknowledged is lost, a restart always binds."""
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

import tap
from ackdtest import Ackd, AckdTestCase, free_port, recv_all, recv_exactly, wait_until

ACK = b"ACK!\n"
CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def private_network(test):
    """This thread (and what it starts) in a network namespace of its own, loopback up.

    Some cases need TIME_WAIT sockets; a namespace that other tests fill with them (each
    namespace holds at most tcp_max_tw_buckets) would close new ones without any."""
    if os.geteuid() != 0:
        test.skipTest("needs root for a network namespace")
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if libc.unshare(CLONE_NEWNET) != 0:
            test.fail(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}")
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            yield
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the test's network namespace")
    finally:
        os.close(home)


class StopTests(AckdTestCase):
    def test_sigterm_with_pending_acks_loses_none(self):
        d = self.start("-l", "line@127.0.0.1:0", "--drain-timeout", "10s")
        clients = []
        for _ in range(8):
            s = d.connect()
            s.setblocking(False)
            clients.append(s)
        # Each client pipelines far more than the socket buffers hold, and reads nothing
        # yet: ackd owes each of them acks it cannot deliver until they read.
        chunk = b"msg\n" * 16384
        # The LFs each client's stream holds (a send may stop within a message, and the
        # next chunk then continues that line).
        lfs = [0] * len(clients)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            progress = False
            for i, s in enumerate(clients):
                try:
                    lfs[i] += chunk.count(b"\n", 0, s.send(chunk))
                    progress = True
                except BlockingIOError:
                    pass
            if not progress:
                time.sleep(0.05)
                if not any(self._can_send(s) for s in clients):
                    break

        start = time.monotonic()
        d.signal(signal.SIGTERM)
        received = []
        for s in clients:
            s.setblocking(True)
            s.settimeout(15)
            data = recv_all(s, limit=1 << 30)
            self.assertEqual(data, ACK * (len(data) // len(ACK)), "acks must be whole and in order")
            received.append(len(data) // len(ACK))
        self.assertEqual(d.wait(), 0)
        self.assertLess(time.monotonic() - start, 10)

        summary = d.summary()
        # Every message ackd took in was acknowledged, and every ack reached its client.
        self.assertEqual(summary["messages"], summary["acknowledged"])
        self.assertEqual(sum(received), summary["acknowledged"])
        for got, s_lfs in zip(received, lfs):
            self.assertGreater(got, 0)
            self.assertLessEqual(got, s_lfs)

    @staticmethod
    def _can_send(s):
        import select
        return bool(select.select([], [s], [], 0)[1])

    def test_sigterm_exits_zero_and_releases_the_port(self):
        port = free_port()
        d = self.start("-l", f"127.0.0.1:{port}")
        self.assertEqual(d.stop(), 0)
        self.assertIn("Stopping", d.log_text())
        # The port is free again: a plain bind without SO_REUSEADDR succeeds.
        s = socket.socket()
        s.bind(("127.0.0.1", port))
        s.close()

    def test_oneshot_client_waiting_for_its_message_is_answered_during_drain(self):
        d = self.start("-l", "127.0.0.1:0", "--drain-timeout", "5s")
        s = d.connect()
        time.sleep(1.5)   # accepted (TCP_DEFER_ACCEPT holds silent clients about 1 s), no message yet
        d.signal(signal.SIGTERM)
        d.wait_log("Stopping")

        # The listener ackd bound itself is closed: new clients are refused at once
        # rather than left in a backlog nobody accepts from.
        def refused():
            try:
                d.connect(timeout=2).close()
                return False
            except ConnectionRefusedError:
                return True
        self.assertTrue(wait_until(refused, timeout=5))

        s.sendall(b"late but in flight")
        self.assertEqual(recv_all(s), b"ACK!")
        self.assertEqual(d.wait(), 0)

    def test_drain_timeout_bounds_the_stop(self):
        d = self.start("-l", "127.0.0.1:0", "--drain-timeout", "1s", "--idle-timeout", "60s")
        idle = [d.connect() for _ in range(5)]
        time.sleep(1.5)
        start = time.monotonic()
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait(), 0)
        self.assertLess(time.monotonic() - start, 3)
        for s in idle:
            self.assertEqual(recv_all(s), b"")

    def test_second_sigterm_stops_at_once(self):
        d = self.start("-l", "127.0.0.1:0", "--drain-timeout", "30s", "--idle-timeout", "60s")
        idle = d.connect()
        time.sleep(1.5)
        d.signal(signal.SIGTERM)
        d.wait_log("Stopping")
        start = time.monotonic()
        d.signal(signal.SIGTERM)
        self.assertEqual(d.wait(), 0)
        self.assertLess(time.monotonic() - start, 3)
        idle.close()

    def test_sigint_stops_like_sigterm(self):
        d = self.start("-l", "127.0.0.1:0")
        d.signal(signal.SIGINT)
        self.assertEqual(d.wait(), 0)


class ReloadTests(AckdTestCase):
    def test_sighup_changes_ack_for_new_connections_only(self):
        d = self.start(config="listen = 127.0.0.1:0\nlisten = line@127.0.0.1:0\nack = ACK!\n")

        old = d.connect(1)
        old.sendall(b"before\n")
        self.assertEqual(recv_exactly(old, 5), b"ACK!\n")

        with open(d.config_file.name, "w") as cf:
            cf.write("listen = 127.0.0.1:0\nlisten = line@127.0.0.1:0\nack = OK\n")
        mark = len(d.log_lines())
        d.signal(signal.SIGHUP)
        d.wait_log(r'Reloaded: .* ack "OK"', start=mark)

        s = d.connect(0)
        s.sendall(b"new")
        self.assertEqual(recv_all(s), b"OK")
        new_line = d.connect(1)
        new_line.sendall(b"x\n")
        self.assertEqual(recv_exactly(new_line, 3), b"OK\n")

        # The connection from before the reload keeps its own ack text and keeps working.
        for _ in range(100):
            old.sendall(b"after\n")
            self.assertEqual(recv_exactly(old, 5), b"ACK!\n")
        self.assertTrue(d.alive())

    def test_bad_config_on_reload_keeps_running_config(self):
        d = self.start(config="listen = 127.0.0.1:0\nack = FIRST\n")
        with open(d.config_file.name, "w") as cf:
            cf.write("listen = 127.0.0.1:0\nmax-message = lots\n")
        mark = len(d.log_lines())
        d.signal(signal.SIGHUP)
        d.wait_log(r"Reload failed, keeping the running configuration: .*:2: max-message", start=mark)
        s = d.connect()
        s.sendall(b"x")
        self.assertEqual(recv_all(s), b"FIRST")

    def test_listener_change_on_reload_is_reported(self):
        d = self.start(config="listen = 127.0.0.1:0\n")
        with open(d.config_file.name, "w") as cf:
            cf.write("listen = 127.0.0.1:1\n")
        d.signal(signal.SIGHUP)
        d.wait_log("listener changes take effect only on restart")

    def test_many_reloads_under_load_drop_nothing(self):
        d = self.start("-l", "line@127.0.0.1:0")
        s = d.connect()
        stop = threading.Event()

        def hup():
            while not stop.is_set():
                d.signal(signal.SIGHUP)
                time.sleep(0.02)
        t = threading.Thread(target=hup)
        t.start()
        i = 0
        try:
            # Round trips for two seconds while SIGHUP arrives every 20 ms.
            deadline = time.monotonic() + 2
            while time.monotonic() < deadline:
                s.sendall(b"m%d\n" % i)
                self.assertEqual(recv_exactly(s, 5), ACK)
                i += 1
        finally:
            stop.set()
            t.join()
        self.assertGreater(i, 100)
        # (Signals that arrive together coalesce, so fewer reloads than signals.)
        self.assertGreater(len([l for l in d.log_lines() if "Reloaded" in l]), 5)


class ConfigErrorTests(AckdTestCase):
    """A configuration that cannot be used says why, at start and on SIGHUP."""

    BOM = b"\xef\xbb\xbf"

    def config_path(self, data=None):
        tmp = tempfile.mkdtemp(prefix="ackd-config-")
        path = os.path.join(tmp, "ackd.conf")
        self.addCleanup(subprocess.run, ["rm", "-rf", tmp])
        if data is not None:
            with open(path, "wb") as f:
                f.write(data)
        return path

    def test_directory_as_config_at_start(self):
        path = self.config_path()
        os.mkdir(path)
        d = Ackd("-c", path, wait_ready=False)
        self.addCleanup(d.__exit__)
        self.assertEqual(d.wait(), 2)
        self.assertIn(f"{path}: read error: Is a directory", d.log_text())

    def test_directory_as_config_on_reload(self):
        path = self.config_path(b"listen = 127.0.0.1:0\nack = FIRST\n")
        d = self.start("-c", path)
        os.unlink(path)
        os.mkdir(path)
        mark = len(d.log_lines())
        d.signal(signal.SIGHUP)
        d.wait_log(rf"Reload failed, keeping the running configuration: {path}: read error: Is a directory$",
                   start=mark)
        s = d.connect()
        s.sendall(b"x")
        self.assertEqual(recv_all(s), b"FIRST")

    def test_byte_order_mark_is_skipped_at_start_and_on_reload(self):
        # As Notepad saves UTF-8: the mark, then CRLF lines.
        path = self.config_path(self.BOM + b"listen = 127.0.0.1:0\r\nack = WIN\r\n")
        d = self.start("-c", path)
        s = d.connect()
        s.sendall(b"x")
        self.assertEqual(recv_all(s), b"WIN")

        with open(path, "wb") as f:
            f.write(self.BOM + b"listen = 127.0.0.1:0\r\nack = AGAIN\r\n")
        mark = len(d.log_lines())
        d.signal(signal.SIGHUP)
        d.wait_log(r'Reloaded: .* ack "AGAIN"', start=mark)

    def test_invisible_bytes_in_keys_and_values_are_shown_escaped(self):
        # Only the first line's mark is an encoding's; anywhere else it is part of the key.
        path = self.config_path(b"listen = 127.0.0.1:0\n" + self.BOM + b"ack = X\n")
        d = Ackd("-c", path, wait_ready=False)
        self.addCleanup(d.__exit__)
        self.assertEqual(d.wait(), 2)
        self.assertIn(f"{path}:2: unknown setting '\\xef\\xbb\\xbfack'", d.log_text())

        path = self.config_path(b"listen = 127.0.0.1:0\n")
        d = self.start("-c", path)
        with open(path, "wb") as f:
            f.write(b"listen = 127.0.0.1:0\nmax\x1b[8m-message = 1\n")
        mark = len(d.log_lines())
        d.signal(signal.SIGHUP)
        m = d.wait_log(r"Reload failed, keeping the running configuration: (.*)$", start=mark)
        self.assertEqual(m.group(1), f"{path}:2: unknown setting 'max\\x1b[8m-message'")
        with open(path, "wb") as f:
            f.write(b"listen = \"127.0.0.1:0\x7f\"\n")
        mark = len(d.log_lines())
        d.signal(signal.SIGHUP)
        m = d.wait_log(r"Reload failed, keeping the running configuration: (.*)$", start=mark)
        self.assertEqual(m.group(1), f"{path}:1: listen: invalid address '127.0.0.1:0\\x7f': "
                                     "port must be a number from 0 to 65535")


class RestartTests(AckdTestCase):
    def test_kill9_with_time_wait_then_immediate_restart_binds(self):
        with private_network(self):
            self.kill9_with_time_wait_then_immediate_restart_binds()

    def kill9_with_time_wait_then_immediate_restart_binds(self):
        port = free_port()
        d = Ackd("-l", f"127.0.0.1:{port}")
        self.addCleanup(d.__exit__)
        # ackd closes first in oneshot mode, so its side of these ends in TIME_WAIT.
        for _ in range(50):
            s = d.connect()
            s.sendall(b"x")
            self.assertEqual(recv_all(s), b"ACK!")
            s.close()
        held = d.connect()   # and one connection still open when it dies
        held.sendall(b"y")
        tw = subprocess.run(["ss", "-Htan", "state", "time-wait", f"( sport = :{port} )"],
                            capture_output=True, text=True).stdout
        self.assertGreater(len(tw.splitlines()), 0, "the test needs server-side TIME_WAIT sockets")

        for attempt in range(5):
            d.proc.kill()
            d.wait()
            d = Ackd(*d.args)   # same ports, at once
            self.addCleanup(d.__exit__)
            self.assertNotIn("Failed", d.log_text())
            s = d.connect()
            s.sendall(b"back")
            self.assertEqual(recv_all(s), b"ACK!")

    def test_port_in_use_by_another_program_fails_clearly(self):
        blocker = socket.socket()
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        d = Ackd("-l", f"127.0.0.1:{port}", wait_ready=False)
        self.addCleanup(d.__exit__)
        self.assertEqual(d.wait(), 1)
        self.assertIn(f"Failed to listen on 127.0.0.1:{port}: Address already in use", d.log_text())
        blocker.close()


if __name__ == "__main__":
    tap.main()
