#!/usr/bin/env python3
"""+proxy listeners against the real ackd: PROXY v1 and v2 headers first, then the mode.

Headers are built here, byte by byte from HAProxy's proxy-protocol.txt, so that the
test does not trust the code it checks; ackc --proxy and a real HAProxy have suites of
their own (tests/client/test_ackc_proxy.py, test_haproxy.py).
"""
import os
import re
import shutil
import socket
import struct
import tempfile
import time

import tap
from ackdtest import ACKD, ROOT_ARGS, Ackd, AckdTestCase, free_port, recv_all, recv_exactly

ACK = b"ACK!\n"
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v1(family, src, dst, sport, dport):
    return f"PROXY {family} {src} {dst} {sport} {dport}\r\n".encode()


def v2(command, family, addresses=b"", tlvs=b""):
    body = addresses + tlvs
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


def v2_tcp4(src, dst, sport, dport, tlvs=b""):
    return v2(1, 0x11, socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport), tlvs)


def v2_tcp6(src, dst, sport, dport):
    return v2(1, 0x21, socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
              + struct.pack("!HH", sport, dport))


V2_LOCAL = v2(0, 0x00)


class ProxyTests(AckdTestCase):
    def setUp(self):
        self.d = self.start("-v", "-l", "line+proxy@127.0.0.1:0", "-l", "+proxy@127.0.0.1:0",
                            "-l", "line@127.0.0.1:0", "--proxy-timeout", "500ms")

    def line(self):
        return self.d.connect(0)

    def exchange(self, i, payload):
        s = self.d.connect(i)
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        return recv_all(s)

    def test_v1_tcp4_line_pipelined_and_the_client_address_is_logged(self):
        s = self.line()
        s.sendall(v1("TCP4", "203.0.113.7", "127.0.0.1", 5555, 9999) + b"one\ntwo\r\nthree\n")
        self.assertEqual(recv_exactly(s, 3 * len(ACK)), 3 * ACK)
        via = s.getsockname()
        self.d.wait_log(rf"Accepted connection from 203\.0\.113\.7:5555 via 127\.0\.0\.1:{via[1]}$")
        self.d.wait_log(r'Received: "two" from 203\.0\.113\.7:5555$')
        # Line mode keeps pipelining after the header.
        s.sendall(b"x\n" * 1000)
        self.assertEqual(recv_exactly(s, 1000 * len(ACK)), 1000 * ACK)

    def test_v1_tcp6_and_unknown(self):
        self.assertEqual(self.exchange(1, v1("TCP6", "2001:db8::1", "::1", 40000, 9999) + b"Hello World!"),
                         b"ACK!")
        self.d.wait_log(r"Accepted connection from \[2001:db8::1\]:40000 via ")
        self.assertEqual(self.exchange(0, b"PROXY UNKNOWN whatever follows\r\nping\n"), ACK)
        self.d.wait_log(r"\(PROXY header without addresses\)")

    def test_v2_tcp4_tcp6_local_and_tlvs_in_both_modes(self):
        tlvs = bytes([0x04, 0x00, 0x03]) + b"abc" + bytes([0xe0, 0x00, 0x01]) + b"z"
        self.assertEqual(self.exchange(1, v2_tcp4("198.51.100.9", "127.0.0.1", 4242, 9999, tlvs) + b"m"), b"ACK!")
        self.d.wait_log(r"Accepted connection from 198\.51\.100\.9:4242 via ")
        self.assertEqual(self.exchange(0, v2_tcp6("2001:db8::9", "::1", 1, 2) + b"a\nb\n"), 2 * ACK)
        self.d.wait_log(r"Accepted connection from \[2001:db8::9\]:1 via ")
        # LOCAL: HAProxy's own health checks; the connection's own address is kept.
        self.assertEqual(self.exchange(0, V2_LOCAL + b"ping\n"), ACK)
        self.assertEqual(self.exchange(1, V2_LOCAL + b"ping"), b"ACK!")

    def test_v2_header_of_exactly_4096_bytes_and_one_more(self):
        def padded(total):
            fixed = len(v2_tcp4("192.0.2.1", "127.0.0.1", 1, 2))
            return v2_tcp4("192.0.2.1", "127.0.0.1", 1, 2, bytes([0x04]) + struct.pack("!H", total - fixed - 3)
                           + bytes(total - fixed - 3))
        self.assertEqual(len(padded(4096)), 4096)
        self.assertEqual(self.exchange(0, padded(4096) + b"big\n"), ACK)
        self.assertEqual(self.exchange(0, padded(4097) + b"big\n"), b"")
        self.d.wait_log(r"bad PROXY header .* \(too long\)")

    def test_header_split_at_every_byte(self):
        for header in (v1("TCP4", "203.0.113.8", "127.0.0.1", 6, 9999), v2_tcp4("203.0.113.9", "127.0.0.1", 7, 8)):
            s = self.line()
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for b in header + b"a\n":
                s.send(bytes([b]))
                time.sleep(0.002)
            self.assertEqual(recv_exactly(s, len(ACK)), ACK)
            s.close()
        self.d.wait_log(r"Accepted connection from 203\.0\.113\.8:6 via ")
        self.d.wait_log(r"Accepted connection from 203\.0\.113\.9:7 via ")

    def test_bad_or_missing_headers_are_closed_and_ackd_keeps_serving(self):
        for bad in (b"Hello World!", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
                    b"PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n", V2_SIGNATURE + b"\x21\x12\x00\x0c" + bytes(12),
                    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"):
            for i in (0, 1):
                self.assertEqual(self.exchange(i, bad), b"", bad)
        self.assertEqual(self.exchange(0, V2_LOCAL + b"still here\n"), ACK)
        # The plain line listener is unchanged: a PROXY line there is just a message.
        self.assertEqual(self.exchange(2, v1("TCP4", "1.2.3.4", "5.6.7.8", 1, 2)), ACK)
        self.assertEqual(self.d.stop(), 0)
        counters = self.d.summary()
        self.assertEqual(counters["proxy-bad-headers"], 12)
        self.assertEqual(counters["resets"], 0)

    def test_header_not_complete_in_time_is_closed(self):
        s = self.line()
        start = time.monotonic()
        s.sendall(b"PROXY TCP4 ")
        self.assertEqual(recv_all(s), b"")
        took = time.monotonic() - start
        self.assertGreaterEqual(took, 0.45)
        self.assertLess(took, 3)
        self.d.wait_log(r"no complete PROXY header in time")
        self.assertEqual(self.d.stop(), 0)
        self.assertEqual(self.d.summary()["proxy-timeouts"], 1)


class TrustTests(AckdTestCase):
    def test_sources_outside_proxy_from_are_closed_at_once(self):
        d = self.start("-l", "line+proxy@127.0.0.1:0", "--proxy-from", "10.0.0.0/8",
                       "--proxy-from", "2001:db8::/32")
        s = d.connect()
        s.sendall(v1("TCP4", "203.0.113.7", "127.0.0.1", 5555, 9999) + b"a\n")
        # Closed unread, which the client's kernel may report as a reset rather than EOF.
        try:
            self.assertEqual(recv_all(s), b"")
        except ConnectionResetError:
            pass
        d.wait_log(r"refused a connection to a \+proxy listener from 127\.0\.0\.1:\d+ \(not in --proxy-from\)")
        self.assertEqual(d.stop(), 0)
        self.assertEqual(d.summary()["proxy-untrusted"], 1)

    def test_sources_inside_proxy_from_are_served(self):
        d = self.start("-l", "line+proxy@127.0.0.1:0", "--proxy-from", "127.0.0.0/8")
        s = d.connect()
        s.sendall(v1("TCP4", "203.0.113.7", "127.0.0.1", 5555, 9999) + b"a\n")
        self.assertEqual(recv_exactly(s, len(ACK)), ACK)

    def test_unix_listener_takes_headers_whatever_proxy_from_says(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp)
        path = os.path.join(tmp, "p.sock")
        d = self.start("-v", "-l", f"line+proxy@unix:{path}", "--proxy-from", "10.0.0.0/8")
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(path)
        s.sendall(v2_tcp4("192.0.2.44", "192.0.2.1", 1234, 80) + b"hi\n")
        self.assertEqual(recv_exactly(s, len(ACK)), ACK)
        d.wait_log(r"Accepted connection from 192\.0\.2\.44:1234 via unix peer pid \d+")


if __name__ == "__main__":
    tap.main()
