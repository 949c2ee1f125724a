#!/usr/bin/env python3
"""oneshot mode: the tutorial protocol, byte for byte, over TCP and AF_UNIX."""
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import tap
from ackdtest import ACKD, ROOT_ARGS, WRAPPER, Ackd, AckdTestCase, recv_all

ACKC = os.environ.get("ACKC_BIN") or os.path.join(os.path.dirname(ACKD), "..", "client", "ackc")


class OneshotTests(AckdTestCase):
    def setUp(self):
        self.d = self.start("-l", "127.0.0.1:0", "--idle-timeout", "1s")

    def test_reply_is_exactly_ack_then_eof(self):
        s = self.d.connect()
        s.sendall(b"Hello World!")
        self.assertEqual(recv_all(s), b"ACK!")

    def test_tutorial_client(self):
        # The classic client: send once, recv(1024) once, print the bytes.
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.connect(self.d.address()[1])
        client.send(b"Hello World!")
        response = client.recv(1024)
        client.close()
        self.assertEqual(repr(response), "b'ACK!'")

    def test_many_sequential_clients(self):
        for i in range(200):
            s = self.d.connect()
            s.sendall(b"message %d" % i)
            self.assertEqual(recv_all(s), b"ACK!")
            s.close()

    def test_eof_before_any_byte_gets_no_reply(self):
        s = self.d.connect()
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_all(s), b"")

    def test_silent_client_closed_at_idle_timeout_without_reply(self):
        s = self.d.connect()
        start = time.monotonic()
        self.assertEqual(recv_all(s), b"")
        elapsed = time.monotonic() - start
        # idle-timeout 1 s, plus up to ~3 s the kernel holds a silent client before
        # accept() with TCP_DEFER_ACCEPT.
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, 6)

    def test_half_close_after_sending_still_gets_reply(self):
        s = self.d.connect()
        s.sendall(b"bye")
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_all(s), b"ACK!")

    def test_oversized_message_reply_not_lost_to_reset(self):
        # 64 KiB with max-message 1024: ackd reads 1024 bytes, answers, and must drain
        # the rest before closing, or the close would reset the connection and the
        # client could lose its ACK!.
        for _ in range(20):
            s = self.d.connect()
            s.sendall(b"x" * 65536)
            time.sleep(0.01)
            self.assertEqual(recv_all(s), b"ACK!")

    def test_message_split_across_writes_is_one_read(self):
        s = self.d.connect()
        s.sendall(b"Hello ")
        self.assertEqual(recv_all(s), b"ACK!")

    def test_client_reset_after_sending_keeps_server_healthy(self):
        for _ in range(50):
            s = self.d.connect()
            s.sendall(b"x")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        s = self.d.connect()
        s.sendall(b"still there?")
        self.assertEqual(recv_all(s), b"ACK!")
        self.assertTrue(self.d.alive())


class OneshotOptionsTests(AckdTestCase):
    def test_custom_ack_text(self):
        d = self.start("-l", "127.0.0.1:0", "--ack", "OK")
        s = d.connect()
        s.sendall(b"x")
        self.assertEqual(recv_all(s), b"OK")

    def test_max_message_bounds_the_single_read(self):
        d = self.start("-l", "127.0.0.1:0", "--max-message", "4", "-v")
        s = d.connect()
        s.sendall(b"abcdefgh")
        self.assertEqual(recv_all(s), b"ACK!")
        d.wait_log(r'Received: "abcd" from 127\.0\.0\.1:')

    def test_default_listener_is_dual_stack(self):
        if not socket.has_ipv6 or not os.path.exists("/proc/net/if_inet6"):
            self.skipTest("no IPv6 on this host")
        d = self.start("-l", ":0")
        self.assertRegex(d.listeners[0][0], r"^\[::\]:\d+$")
        port = d.port()
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            s = socket.socket(family)
            s.settimeout(5)
            s.connect((host, port))
            s.sendall(b"hi")
            self.assertEqual(recv_all(s), b"ACK!", host)

    def test_explicit_ipv6_listener_is_ipv6_only(self):
        if not os.path.exists("/proc/net/if_inet6"):
            self.skipTest("no IPv6 on this host")
        d = self.start("-l", "[::1]:0")
        s = d.connect()
        s.sendall(b"v6")
        self.assertEqual(recv_all(s), b"ACK!")

    def test_unix_socket(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "ackd.sock")
            d = self.start("-l", f"unix:{path}", "-l", f"line@unix:{path}.line")
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.sendall(b"over unix")
            self.assertEqual(recv_all(s), b"ACK!")
            s = socket.socket(socket.AF_UNIX)
            s.connect(path + ".line")
            s.sendall(b"a\nb\n")
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recv_all(s), b"ACK!\nACK!\n")
            self.assertEqual(d.stop(), 0)
            # Socket files ackd created are removed on exit.
            self.assertFalse(os.path.exists(path))
            self.assertFalse(os.path.exists(path + ".line"))

    def test_abstract_unix_socket(self):
        name = f"ackd-test-{os.getpid()}"
        self.start("-l", f"unix:@{name}")
        s = socket.socket(socket.AF_UNIX)
        s.connect("\0" + name)
        s.sendall(b"abstract")
        self.assertEqual(recv_all(s), b"ACK!")

    def test_stale_unix_socket_is_replaced(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "stale.sock")
            stale = socket.socket(socket.AF_UNIX)
            stale.bind(path)
            stale.close()   # the file stays, nobody listens: a crashed instance's leftover
            self.start("-l", f"unix:{path}")
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            s.sendall(b"x")
            self.assertEqual(recv_all(s), b"ACK!")

    def test_live_unix_socket_is_not_stolen(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "live.sock")
            self.start("-l", f"unix:{path}")
            from ackdtest import Ackd
            second = Ackd("-l", f"unix:{path}", wait_ready=False)
            self.addCleanup(second.__exit__)
            self.assertEqual(second.wait(), 1)
            self.assertIn("another process is serving it", second.log_text())


class AddressTests(AckdTestCase):
    """Listen addresses named exactly: IPv4-mapped IPv6, and scoped IPv6 link-local."""

    def test_ipv4_mapped_listener_is_named_as_given(self):
        if not os.path.exists("/proc/net/if_inet6"):
            self.skipTest("no IPv6 on this host")
        d = self.start("-l", "[::ffff:127.0.0.1]:0")
        self.assertRegex(d.listeners[0][0], r"^\[::ffff:127\.0\.0\.1\]:\d+$")
        # An IPv4-mapped address is IPv4 on the wire: IPv4 clients reach it.
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::ffff:127.0.0.1")):
            s = socket.socket(family)
            s.settimeout(5)
            s.connect((host, d.port()))
            s.sendall(b"mapped")
            self.assertEqual(recv_all(s), b"ACK!", host)

    def test_link_local_without_scope_is_a_usage_error(self):
        d = Ackd("-l", "[fe80::1]:9999", wait_ready=False)
        self.addCleanup(d.__exit__)
        self.assertEqual(d.wait(), 2)
        self.assertIn("invalid address '[fe80::1]:9999': link-local address needs a scope, "
                      "e.g. [fe80::1%eth0]:9999", d.log_text())

    def test_unknown_interface_is_named(self):
        d = Ackd("-l", "[fe80::1%nosuch-ackd0]:0", wait_ready=False)
        self.addCleanup(d.__exit__)
        self.assertEqual(d.wait(), 1)
        self.assertIn("Failed to listen on [fe80::1%nosuch-ackd0]:0: no network interface 'nosuch-ackd0'",
                      d.log_text())

    def test_scoped_link_local_by_name_and_by_index(self):
        # fe80::1 on lo, in a network namespace of ackd's own that goes away with it.
        if os.geteuid() != 0:
            self.skipTest("needs root for a network namespace")
        for tool in ("unshare", "nsenter", "ip"):
            if not shutil.which(tool):
                self.skipTest(f"{tool} not installed (packages util-linux, iproute2)")
        setup = 'ip link set lo up && ip -6 addr add fe80::1/64 dev lo nodad && exec "$0" "$@"'
        d = self.start(executable=["unshare", "--net", "sh", "-c", setup] + WRAPPER +
                       [ACKD] + ROOT_ARGS + ["-c", os.devnull, "-l", "[fe80::1%lo]:0", "-l", "line@[fe80::1%1]:0"])
        names = [name for name, _ in d.listeners]
        self.assertEqual(len(names), 2, d.log_text())
        # lo is interface 1 in a new namespace: both show its name.
        for name in names:
            self.assertRegex(name, r"^\[fe80::1%lo\]:\d+$")
        ports = [int(name.rsplit(":", 1)[1]) for name in names]

        def ackc(*args):
            return subprocess.run(["nsenter", f"--net=/proc/{d.pid}/ns/net", ACKC, *args], capture_output=True,
                                  text=True, timeout=20)
        r = ackc("-H", "fe80::1%lo", "-p", str(ports[0]), "hello")
        self.assertEqual((r.returncode, r.stdout), (0, "ACK!\n"), r.stderr)
        r = ackc("-m", "line", "-H", "fe80::1%1", "-p", str(ports[1]), "a", "b")
        self.assertEqual((r.returncode, r.stdout), (0, "ACK!\nACK!\n"), r.stderr)
        self.assertEqual(d.stop(), 0)


class VerboseLogTests(AckdTestCase):
    def test_logs_connection_and_message_like_the_tutorial(self):
        d = self.start("-l", "127.0.0.1:0", "-v")
        s = d.connect()
        s.sendall(b"Hello World!")
        self.assertEqual(recv_all(s), b"ACK!")
        port = s.getsockname()[1]
        d.wait_log(rf"Accepted connection from 127\.0\.0\.1:{port}$")
        d.wait_log(rf'Received: "Hello World!" from 127\.0\.0\.1:{port}$')

    def test_client_cannot_forge_log_lines_or_send_escapes(self):
        d = self.start("-l", "127.0.0.1:0", "-v")
        # Under the 64-byte preview, so all of it must show, escaped.
        evil = b"hi\n2026-01-01T00:00Z Accepted connection from 6.6.6.6:1\x1b[31m\r\x00\xff\""
        s = d.connect()
        s.sendall(evil)
        self.assertEqual(recv_all(s), b"ACK!")
        m = d.wait_log(r'Received: "(.*)" from 127\.0\.0\.1:\d+$')
        self.assertEqual(m.group(1), r'hi\n2026-01-01T00:00Z Accepted connection from 6.6.6.6:1'
                                     r'\x1b[31m\r\x00\xff\"')
        for line in d.log_lines():
            self.assertNotIn("6.6.6.6:1", line.split("Received:")[0])
            self.assertFalse(any(ord(c) < 0x20 or ord(c) == 0x7f for c in line), repr(line))

    def test_long_message_is_truncated_in_the_log(self):
        d = self.start("-l", "127.0.0.1:0", "-v")
        s = d.connect()
        s.sendall(b"A" * 1000)
        self.assertEqual(recv_all(s), b"ACK!")
        m = d.wait_log(r'Received: "(A+)\.\.\." \(1000 bytes\) from')
        self.assertEqual(len(m.group(1)), 64)

    def test_default_level_logs_no_connections(self):
        d = self.start("-l", "127.0.0.1:0")
        s = d.connect()
        s.sendall(b"quiet")
        self.assertEqual(recv_all(s), b"ACK!")
        self.assertEqual(d.stop(), 0)
        self.assertNotIn("Accepted", d.log_text())
        self.assertNotIn("Received", d.log_text())


if __name__ == "__main__":
    tap.main()
