#!/usr/bin/env python3
"""Bounded resources: ERR busy over max-connections, the fd limit, many clients at once."""
import socket
import time

import tap
from ackdtest import AckdTestCase, recv_all, recv_exactly

ACK = b"ACK!\n"


class BusyTests(AckdTestCase):
    def test_over_max_connections_gets_err_busy(self):
        d = self.start("-l", "line@127.0.0.1:0", "--max-connections", "1")
        held = d.connect()
        held.sendall(b"first\n")
        self.assertEqual(recv_exactly(held, 5), ACK)

        for _ in range(20):
            s = d.connect()
            s.sendall(b"second\n")
            self.assertEqual(recv_all(s), b"ERR busy\n")

        # The admitted connection is unaffected, and its slot frees on close.
        held.sendall(b"still\n")
        self.assertEqual(recv_exactly(held, 5), ACK)
        held.close()
        s = None
        for _ in range(50):
            s = d.connect()
            s.sendall(b"third\n")
            s.shutdown(socket.SHUT_WR)
            data = recv_all(s)
            if data == ACK:
                break
            time.sleep(0.05)   # the close may not have been processed yet
        self.assertEqual(data, ACK)
        # Logged once, not once per refused connection.
        self.assertEqual(sum("Connection limit reached" in l for l in d.log_lines()), 1)

    def test_busy_in_oneshot_mode(self):
        d = self.start("-l", "127.0.0.1:0", "-l", "line@127.0.0.1:0", "--max-connections", "1")
        held = d.connect(1)
        held.sendall(b"x\n")
        self.assertEqual(recv_exactly(held, 5), ACK)
        s = d.connect(0)
        s.sendall(b"Hello World!")
        self.assertEqual(recv_all(s), b"ERR busy\n")


class FdLimitTests(AckdTestCase):
    def test_max_connections_capped_by_fd_limit(self):
        d = self.start("-l", "line@127.0.0.1:0", "-t", "1", nofile=64)
        m = d.wait_log(r"max-connections 10000 exceeds what the file descriptor limit \(64\) allows; "
                       r"serving at most (\d+)")
        cap = int(m.group(1))
        self.assertGreater(cap, 10)
        self.assertLess(cap, 64)

        clients = []
        for i in range(cap):
            s = d.connect()
            s.sendall(b"hello\n")
            self.assertEqual(recv_exactly(s, 5), ACK, f"connection {i} of {cap}")
            clients.append(s)
        # One more than the cap is refused politely, not with EMFILE chaos.
        for _ in range(10):
            s = d.connect()
            s.sendall(b"extra\n")
            self.assertEqual(recv_all(s), b"ERR busy\n")
        for s in clients:
            s.sendall(b"again\n")
            self.assertEqual(recv_exactly(s, 5), ACK)
        self.assertTrue(d.alive())
        self.assertLessEqual(d.fd_count(), 64)

    def test_too_low_fd_limit_is_an_error(self):
        from ackdtest import Ackd
        d = Ackd("-l", "127.0.0.1:0", "-t", "4", nofile=20, wait_ready=False)
        self.addCleanup(d.__exit__)
        self.assertEqual(d.wait(), 1)
        self.assertIn("file descriptor limit (20) is too low", d.log_text())


class ConcurrencyTests(AckdTestCase):
    def test_1000_concurrent_oneshot_clients(self):
        d = self.start("-l", "127.0.0.1:0", "-t", "2")
        socks = [d.connect() for _ in range(1000)]
        for i, s in enumerate(socks):
            s.sendall(b"client %d" % i)
        for s in socks:
            self.assertEqual(recv_all(s), b"ACK!")

    def test_500_concurrent_line_clients_interleaved(self):
        d = self.start("-l", "line@127.0.0.1:0", "-t", "4")
        socks = [d.connect() for _ in range(500)]
        for round_ in range(3):
            for s in socks:
                s.sendall(b"a\nb\n")
            for s in socks:
                self.assertEqual(recv_exactly(s, 10), ACK * 2)
        d.stop()
        self.assertEqual(d.summary()["acknowledged"], 500 * 3 * 2)


if __name__ == "__main__":
    tap.main()
