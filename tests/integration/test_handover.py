#!/usr/bin/env python3
"""Restart handover through a file descriptor store, outside PID 1.

The test plays the service manager's part: it owns the listening sockets and
passes them with LISTEN_FDS, runs the NOTIFY_SOCKET, keeps what ackd stores with
FDSTORE=1 (and drops it on FDSTOREREMOVE=1), answers BARRIER=1, and starts the
next ackd with the stored fds after the listeners, as systemd does. The real-PID-1
version of these cases is in tests/system/test_system.py.
"""
import array
import os
import select
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

import tap
from ackdtest import ACKD, ROOT_ARGS, WRAPPER, Ackd, AckdTestCase, recv_all, recv_exactly, wait_until

ACK = b"ACK!\n"
V2_LOCAL = b"\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"


class FakeManager:
    """The NOTIFY_SOCKET end of a service manager, with a file descriptor store."""

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.store = []                 # (name, fd), in the order stored
        self.messages = []
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.running = True
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                msg, anc, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(253 * 4) + socket.CMSG_SPACE(12))
            except OSError:
                return
            fds = []
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    a = array.array("i")
                    a.frombytes(data[:len(data) - len(data) % a.itemsize])
                    fds += list(a)
            fields = dict(line.split("=", 1) for line in msg.decode().splitlines() if "=" in line)
            with self.cond:
                self.messages.append(fields)
                if fields.get("FDSTORE") == "1":
                    self.store += [(fields.get("FDNAME", "stored"), fd) for fd in fds]
                    fds = []
                elif fields.get("FDSTOREREMOVE") == "1":
                    keep = []
                    for name, fd in self.store:
                        if name == fields.get("FDNAME"):
                            os.close(fd)
                        else:
                            keep.append((name, fd))
                    self.store = keep
                # BARRIER=1 carries a pipe: closing it is the answer.
                for fd in fds:
                    os.close(fd)
                self.cond.notify_all()

    def wait_for(self, key, value, timeout=20):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not any(m.get(key) == value for m in self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {key}={value} from ackd; got {self.messages}")
                self.cond.wait(left)

    def stored(self, name):
        with self.cond:
            return [fd for n, fd in self.store if n == name]

    def close(self):
        self.running = False
        self.sock.close()
        for _, fd in self.store:
            os.close(fd)
        self.store = []


class HandoverTests(AckdTestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp()
        self.manager = FakeManager(self.tmp)
        self.addCleanup(self.manager.close)
        self.listeners = []
        for _ in range(2):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen(128)
            self.addCleanup(s.close)
            self.listeners.append(s)
        self.names = ["line", "oneshot+proxy"]

    def start_ackd(self, *args, fdstore=1000):
        """ackd with our listeners first, then whatever the store holds, as systemd passes them."""
        passed = [s.fileno() for s in self.listeners] + [fd for _, fd in self.manager.store]
        names = self.names + [n for n, _ in self.manager.store]
        env = {"NOTIFY_SOCKET": self.manager.path, "LISTEN_FDS": str(len(passed)),
               "LISTEN_FDNAMES": ":".join(names), "FDSTORE": str(fdstore)}

        def place_fds():
            # Into 3, 4, ...: dup everything out of the way first, then into place.
            high = [os.dup(fd) for fd in passed]
            for i, fd in enumerate(high):
                os.dup2(fd, 3 + i)
                os.close(fd)
        cmd = WRAPPER + [ACKD, "-c", os.devnull, "-v", *ROOT_ARGS, *args]
        shell = ["sh", "-c", 'LISTEN_PID=$$ exec "$@"', "sh"] + cmd
        d = Ackd(executable=shell, env=env, preexec_fn=place_fds, close_fds=False)
        self.addCleanup(d.__exit__)
        return d

    def port(self, i):
        return self.listeners[i].getsockname()

    def restart(self, d):
        """What systemctl restart does: SIGUSR2, wait for the exit, start the next."""
        d.signal(signal.SIGUSR2)
        self.assertEqual(d.wait(), 0)
        d.wait_log(r"Restart: handed \d+ connections to the next ackd")
        nxt = self.start_ackd()
        nxt.wait_log(r"Ready: ")
        return nxt

    def test_line_clients_keep_their_connections_and_every_ack(self):
        d = self.start_ackd()
        d.wait_log(r"Ready: ")
        clients = [socket.create_connection(self.port(0), timeout=10) for _ in range(20)]
        for i, c in enumerate(clients):
            c.sendall(b"m\n" * 100)
        for c in clients:
            self.assertEqual(recv_exactly(c, 100 * len(ACK)), 100 * ACK)
        # A message half sent across the restart, and acks owed that the client has not read.
        for c in clients:
            c.sendall(b"m\n" * 1000 + b"half")
        time.sleep(0.2)
        d2 = self.restart(d)
        d2.wait_log(r"Restart: resuming 20 connections of the previous ackd")
        self.manager.wait_for("FDSTOREREMOVE", "1")
        self.assertEqual(self.manager.stored("ackd-connections"), [])
        for c in clients:
            c.sendall(b" done\n")
            self.assertEqual(recv_exactly(c, 1001 * len(ACK)), 1001 * ACK)
            # Still the same connection, still served.
            c.sendall(b"again\n")
            self.assertEqual(recv_exactly(c, len(ACK)), ACK)
        for c in clients:
            c.close()
        self.assertEqual(d2.stop(), 0)
        counters = d2.summary()
        self.assertEqual(counters["taken-over"], 20)
        self.assertEqual(counters["handover-lost"], 0)

    def test_oneshot_proxy_connections_at_every_stage(self):
        d = self.start_ackd()
        d.wait_log(r"Ready: ")
        waiting_header = socket.create_connection(self.port(1), timeout=10)
        waiting_message = socket.create_connection(self.port(1), timeout=10)
        waiting_message.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 9999\r\n")
        answered = socket.create_connection(self.port(1), timeout=10)
        answered.sendall(V2_LOCAL + b"hi")
        self.assertEqual(recv_exactly(answered, 4), b"ACK!")     # and now lingering
        wait_until(lambda: "Accepted connection from 203.0.113.7:5555" in d.log_text())
        d2 = self.restart(d)
        d2.wait_log(r"Restart: resuming 3 connections of the previous ackd")
        waiting_header.sendall(V2_LOCAL + b"late")
        waiting_header.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_all(waiting_header), b"ACK!")
        waiting_message.sendall(b"message")
        waiting_message.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_all(waiting_message), b"ACK!")
        # The client address from before the restart is still the one logged.
        d2.wait_log(r'Received: "message" from 203\.0\.113\.7:5555')
        answered.shutdown(socket.SHUT_WR)
        self.assertEqual(recv_all(answered), b"")

    def test_restart_without_a_store_drains(self):
        d = self.start_ackd(fdstore=0)
        d.wait_log(r"Ready: ")
        c = socket.create_connection(self.port(0), timeout=10)
        c.sendall(b"a\nb\n")
        # Read by ackd before the signal (a stop answers what it has read, not what is queued).
        self.assertEqual(recv_exactly(c, 2 * len(ACK)), 2 * ACK)
        c.sendall(b"unterminated")
        d.signal(signal.SIGUSR2)
        d.wait_log(r"Restart: draining instead of handing connections over: no file descriptor store")
        self.assertEqual(recv_all(c), b"")      # EOF: drained and closed, not handed over
        self.assertEqual(d.wait(), 0)
        self.assertEqual(self.manager.stored("ackd-connections"), [])

    def test_a_store_too_small_hands_over_what_fits_and_drains_the_rest(self):
        # FDSTORE=2: the state and one carrier, which holds 1012 sockets (4 messages of 253).
        capacity, extra = 4 * 253, 5
        d = self.start_ackd(fdstore=2)
        d.wait_log(r"Ready: ")
        clients = [socket.create_connection(self.port(0), timeout=10) for _ in range(capacity + extra)]
        for c in clients:
            c.sendall(b"x\n")
        for c in clients:
            self.assertEqual(recv_exactly(c, len(ACK)), ACK)
        d.signal(signal.SIGUSR2)
        self.assertEqual(d.wait(), 0)
        d.wait_log(rf"Restart: handed {capacity} connections to the next ackd")
        self.assertEqual(len(self.manager.stored("ackd-connections")), 1)
        # The rest were drained: EOF for exactly those, and the others still open.
        deadline = time.monotonic() + 5
        closed = set()
        while len(closed) < extra and time.monotonic() < deadline:
            ready, _, _ = select.select([c for c in clients if c not in closed], [], [], 0.5)
            for c in ready:
                if c.recv(1) == b"":
                    closed.add(c)
        self.assertEqual(len(closed), extra)
        d2 = self.start_ackd(fdstore=2)
        d2.wait_log(rf"Restart: resuming {capacity} connections of the previous ackd")
        for c in clients:
            if c not in closed:
                c.sendall(b"y\n")
        for c in clients:
            if c not in closed:
                self.assertEqual(recv_exactly(c, len(ACK)), ACK)
        for c in clients:
            c.close()

    def test_sockets_stored_one_by_one_are_taken_too(self):
        # As ackd stored them before carriers: the first restart onto this version.
        d = self.start_ackd()
        d.wait_log(r"Ready: ")
        clients = [socket.create_connection(self.port(0), timeout=10) for _ in range(3)]
        for c in clients:
            c.sendall(b"x\n")
            self.assertEqual(recv_exactly(c, len(ACK)), ACK)
        d.signal(signal.SIGUSR2)
        self.assertEqual(d.wait(), 0)
        singles = []
        for carrier in self.manager.stored("ackd-connections"):
            with socket.socket(fileno=os.dup(carrier)) as s:
                s.setblocking(False)
                while True:
                    try:
                        _, fds, _, _ = socket.recv_fds(s, 1, 253)
                    except BlockingIOError:
                        break
                    singles += fds
            os.close(carrier)
        self.assertEqual(len(singles), 3)
        self.manager.store = ([(n, fd) for n, fd in self.manager.store if n != "ackd-connections"]
                              + [("ackd-connection", fd) for fd in singles])
        d2 = self.start_ackd()
        d2.wait_log(r"Restart: resuming 3 connections of the previous ackd")
        self.assertTrue(wait_until(lambda: self.manager.stored("ackd-connection") == []))
        for c in clients:
            c.sendall(b"y\n")
            self.assertEqual(recv_exactly(c, len(ACK)), ACK)
            c.close()

    def test_a_corrupt_state_closes_the_connections_and_ackd_serves_on(self):
        d = self.start_ackd()
        d.wait_log(r"Ready: ")
        c = socket.create_connection(self.port(0), timeout=10)
        c.sendall(b"x\n")
        self.assertEqual(recv_exactly(c, len(ACK)), ACK)
        d.signal(signal.SIGUSR2)
        self.assertEqual(d.wait(), 0)
        # Replace the state with garbage of our own.
        state = self.manager.stored("ackd-handover")[0]
        fake = os.memfd_create("corrupt")
        os.write(fake, b"ackd-handover 1\nnonsense\n")
        self.manager.store = [(n, fake if fd == state else fd) for n, fd in self.manager.store]
        os.close(state)
        d2 = self.start_ackd()
        d2.wait_log(r"Restart: refusing the handover state: line 2")
        d2.wait_log(r"Ready: ")
        self.assertEqual(recv_all(c), b"")      # a FIN, not a reset
        s = socket.create_connection(self.port(0), timeout=10)
        s.sendall(b"y\n")
        self.assertEqual(recv_exactly(s, len(ACK)), ACK)
        self.assertEqual(d2.stop(), 0)
        self.assertEqual(d2.summary()["handover-lost"], 1)


if __name__ == "__main__":
    tap.main()
