#!/usr/bin/env python3
"""line mode: persistent, pipelined, one ACK!\\n per LF-terminated message, in order."""
import socket
import struct
import time

import tap
from ackdtest import AckdTestCase, recv_all, recv_exactly, wait_until

ACK = b"ACK!\n"


class LineTests(AckdTestCase):
    def setUp(self):
        self.d = self.start("-l", "line@127.0.0.1:0", "--idle-timeout", "2s", "--max-message", "100")

    def exchange(self, payload):
        s = self.d.connect()
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return recv_all(s)

    def test_10000_pipelined_messages_in_one_write(self):
        s = self.d.connect()
        payload = b"".join(b"message %05d\n" % i for i in range(10000))
        s.sendall(payload)   # one write of 140 KB
        data = recv_exactly(s, 10000 * len(ACK))
        self.assertEqual(data, ACK * 10000)
        # The connection persists: one more round trip on it.
        s.sendall(b"one more\n")
        self.assertEqual(recv_exactly(s, len(ACK)), ACK)

    def test_crlf_and_empty_lines_are_messages(self):
        self.assertEqual(self.exchange(b"a\r\nb\n\n\r\n"), ACK * 4)

    def test_message_split_at_every_byte(self):
        s = self.d.connect()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for b in b"split\r\nacross\nwrites\n":
            s.send(bytes([b]))
            time.sleep(0.002)
        self.assertEqual(recv_exactly(s, 3 * len(ACK)), ACK * 3)

    def test_unterminated_message_at_eof_is_acknowledged(self):
        self.assertEqual(self.exchange(b"one\ntwo\npartial"), ACK * 3)

    def test_eof_without_any_message_gets_nothing(self):
        self.assertEqual(self.exchange(b""), b"")

    def test_message_of_exactly_max_message_is_accepted(self):
        self.assertEqual(self.exchange(b"x" * 100 + b"\n"), ACK)
        self.assertEqual(self.exchange(b"x" * 100 + b"\r\n"), ACK)

    def test_too_long_message_gets_error_after_earlier_acks(self):
        s = self.d.connect()
        s.sendall(b"ok\nfine\n" + b"y" * 101 + b"\nnever\n")
        self.assertEqual(recv_all(s), ACK * 2 + b"ERR message too long\n")

    def test_too_long_without_newline_is_refused_before_the_newline(self):
        s = self.d.connect()
        s.sendall(b"z" * 5000)   # no LF ever comes
        self.assertEqual(recv_all(s), b"ERR message too long\n")

    def test_nul_bytes_are_ordinary(self):
        self.assertEqual(self.exchange(b"\x00\x00\n\x00\n"), ACK * 2)

    def test_idle_timeout_closes_a_connection_without_messages(self):
        s = self.d.connect()
        s.sendall(b"no newline yet")
        start = time.monotonic()
        self.assertEqual(recv_all(s), b"")
        self.assertGreater(time.monotonic() - start, 1.5)
        self.assertLess(time.monotonic() - start, 5)

    def test_slow_trickle_without_newline_closed_at_idle_timeout(self):
        s = self.d.connect()
        start = time.monotonic()
        closed = False
        while time.monotonic() - start < 6:
            try:
                s.send(b"x")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            s.settimeout(0.3)
            try:
                if s.recv(100) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
        self.assertTrue(closed, "a client trickling bytes without completing a message must be closed")
        self.assertLess(time.monotonic() - start, 4.5)

    def test_many_round_trips_on_one_connection(self):
        s = self.d.connect()
        for i in range(500):
            s.sendall(b"ping %d\n" % i)
            self.assertEqual(recv_exactly(s, len(ACK)), ACK)


class ResetTests(AckdTestCase):
    """A reset that lost nothing (HAProxy's health checks end this way) is a normal close;
    one that lost a reply or a partial message is an error."""

    def summary_after(self, clients, rcvbuf=None, delayed_ack=False):
        """Runs each (payload, bytes to read) client, which then resets; returns the
        counters ackd logs when it stops. With delayed_ack, the client delays its ACKs
        as HAProxy's checks do (TCP_QUICKACK off), so the reset comes before the ACK of
        the reply it has read."""
        d = self.start("-l", "line@127.0.0.1:0")
        idle_fds = d.fd_count()
        for payload, read in clients:
            s = socket.socket()
            if rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            s.settimeout(10)
            if delayed_ack:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
            s.connect(d.address()[1])
            if delayed_ack:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
            s.sendall(payload)
            self.assertEqual(recv_exactly(s, read), ACK * (read // len(ACK)))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        # Stop only once ackd has seen every reset.
        self.assertTrue(wait_until(lambda: d.fd_count() == idle_fds))
        self.assertEqual(d.stop(), 0)
        return d.summary()

    def test_reset_after_the_reply_is_a_normal_close(self):
        st = self.summary_after([(b"ping\n", len(ACK))] * 5)
        self.assertEqual((st["resets"], st["reset-closes"], st["acknowledged"]), (0, 5, 5))

    def test_reset_with_the_ack_of_the_reply_delayed_is_a_normal_close(self):
        st = self.summary_after([(b"ping\n", len(ACK))] * 5, delayed_ack=True)
        self.assertEqual((st["resets"], st["reset-closes"], st["acknowledged"]), (0, 5, 5))

    def test_reset_with_a_partial_message_is_an_error(self):
        st = self.summary_after([(b"ping\npa", len(ACK))])
        self.assertEqual((st["resets"], st["reset-closes"]), (1, 0))

    def test_reset_before_reading_most_replies_of_a_long_pipeline(self):
        # 100,000 acks, and a receive window far too small for them: the client reads
        # one and resets while ackd still has acks to write or in flight. (Acks its TCP
        # had taken would count as delivered, read or not: ackd cannot tell.)
        st = self.summary_after([(b"m\n" * 100000, len(ACK))], rcvbuf=4096)
        self.assertEqual((st["resets"], st["reset-closes"]), (1, 0))


class BackpressureTests(AckdTestCase):
    def test_non_reading_client_does_not_grow_rss(self):
        d = self.start("-l", "line@127.0.0.1:0", "-t", "1")
        warm = d.connect()
        warm.sendall(b"warm\n" * 1000)
        recv_exactly(warm, 1000 * len(ACK))
        baseline = d.rss_kb()

        # 20 MB of 2-byte messages (10 million acks owed) from a client that never reads.
        s = d.connect()
        s.setblocking(False)
        chunk = b"m\n" * 32768
        # What the stream holds, counted from what each send took: a send may stop halfway
        # through "m\n", and the next chunk then continues that line ("mm\n").
        sent, lfs, halfway, last = 0, 0, 0, b""
        deadline = time.monotonic() + 5
        while sent < 20_000_000 and time.monotonic() < deadline:
            try:
                n = s.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            sent += n
            lfs += chunk.count(b"\n", 0, n)
            halfway += n % 2
            last = chunk[n - 1:n] or last
        peak = d.rss_kb()
        self.assertLess(sent, 20_000_000, "backpressure: ackd must stop reading from a client that does not read")
        self.assertLess(peak - baseline, 2048, f"RSS grew from {baseline} to {peak} KiB")

        # Now read: every message ackd took in is acknowledged, in order, nothing else.
        s.setblocking(True)
        s.settimeout(10)
        s.shutdown(socket.SHUT_WR)
        data = recv_all(s, limit=1 << 30)
        self.assertEqual(len(data) % len(ACK), 0)
        self.assertEqual(data, ACK * (len(data) // len(ACK)))
        # One ack per LF, and one for an unterminated last line, at EOF.
        self.assertEqual(len(data) // len(ACK), lfs + (last not in (b"", b"\n")),
                         f"{sent} bytes sent, {lfs} LFs, {halfway} sends stopped halfway through a message")
        self.assertLess(d.rss_kb() - baseline, 2048)


if __name__ == "__main__":
    tap.main()
