#!/usr/bin/env python3
"""Overload (issue 6): connection floods, running out of file descriptors, signals under
load, kill -9 and an immediate restart.

Like test_faults.py, each case checks what the clients see, then that ackd is up,
answers a fresh client on both listeners and that its fd count returns exactly to the
baseline and its RSS to within faultlib.RSS_TOLERANCE_KB. These cases measure CPU time
and timings: they must not run in parallel with other tests.
"""
import os
import re
import signal
import threading
import time

import tap
from ackdtest import Ackd, AckdTestCase, free_port, recv_exactly
from faultlib import (ACK, ACK_LINE, BUSY, SLOWDOWN, RssSampler, Swarm, assert_recovered, count_matching, exchange,
                      mode_of, new_log_lines, note, server_rx_queue, slow_reader, take_baseline, tcp_states)

ONESHOT, LINE = 0, 1
ACCEPT_FAILED = r"accept\(\) on \S+ failed: Too many open files; pausing new connections"
LIMIT_REACHED = r"Connection limit reached"


def tcp_listeners(*extra):
    return ("-l", "127.0.0.1:0", "-l", "line@127.0.0.1:0") + extra


def rate_limited_bound(seconds):
    """Most lines a warning logged at most once per 10 s may produce in `seconds`."""
    return 1 + int(seconds // 10)


def classify(conns, mode):
    """{"admitted": [...], "busy": [...], "other": [...]} by what each client received."""
    out = {"admitted": [], "busy": [], "other": []}
    for c in conns:
        rx = bytes(c.rx)
        if rx == (ACK if mode == "oneshot" else ACK_LINE):
            out["admitted"].append(c)
        elif rx == BUSY:
            out["busy"].append(c)
        else:
            out["other"].append(c)
    return out


def replied(c, mode):
    """Done for a flood client: closed by ackd (ERR busy, or a oneshot reply), or, in line
    mode, acknowledged and still open."""
    return c.closed or (mode == "line" and bytes(c.rx[:len(ACK_LINE)]) == ACK_LINE)


def run_flood(tc, d, clients, inflight=500, timeout=60):
    """Opens the clients given as (listener, message) pairs, at most `inflight` of them
    awaiting their reply at once, and serves them until each has replied(). Clients keep
    their sockets open. Returns (the Swarm, {listener: [Conn]}, seconds taken)."""
    sw = Swarm(*d.address(0))
    by_listener = {}
    pending = []
    start = time.monotonic()
    todo = list(clients)
    todo.reverse()
    while todo or pending:
        while todo and len(pending) < inflight:
            i, msg = todo.pop()
            c = sw.open(payload=msg, addr=d.address(i)[1])
            by_listener.setdefault(i, []).append(c)
            pending.append((i, c))
        sw.poll(0.005)
        pending = [(i, c) for i, c in pending if not replied(c, mode_of(d, i))]
        if time.monotonic() - start > timeout:
            tc.fail(f"{len(pending)} clients without a reply after {timeout} s")
    return sw, by_listener, time.monotonic() - start


class FloodTests(AckdTestCase):
    N = 5000
    MAX = 100

    def flood(self, i):
        d = self.start(*tcp_listeners("--max-connections", str(self.MAX)))
        base = take_baseline(self, d)
        mode = mode_of(d, i)
        msg = b"flood" if mode == "oneshot" else b"flood\n"
        with RssSampler(d) as rss:
            cpu0 = d.cpu_seconds()
            sw, conns, took = run_flood(self, d, [(i, msg)] * self.N)
            cpu = d.cpu_seconds() - cpu0
            got = classify(conns[i], mode)
            resets = sum(c.how == "reset" for c in got["busy"])
            note(f"flood of {self.N} {mode} connects at max-connections {self.MAX}: {took:.2f} s, "
                 f"{len(got['admitted'])} answered, {len(got['busy'])} ERR busy ({resets} of them then reset), "
                 f"{len(got['other'])} other; ackd CPU {cpu:.2f} s, peak fds {rss.peak_fds}")
            self.assertEqual([bytes(c.rx) for c in got["other"]][:5], [],
                             "every client gets its reply or ERR busy, never nothing")
            self.assertGreater(len(got["busy"]), 0)
            if mode == "line":
                # Admitted line clients stay connected, so exactly max-connections get in,
                # and each is still served.
                self.assertEqual(len(got["admitted"]), self.MAX)
                for c in got["admitted"]:
                    c.sock.setblocking(True)
                    c.sock.settimeout(10)
                    c.sock.sendall(b"still there\n")
                    self.assertEqual(recv_exactly(c.sock, len(ACK_LINE)), ACK_LINE)
            else:
                # Admitted oneshot clients hold their socket, and ackd its side for the
                # 2 s linger; slots free up after that, so at least max-connections get in.
                self.assertGreaterEqual(len(got["admitted"]), self.MAX)
            sw.close_all()
        lines = new_log_lines(d, base)
        self.assertGreaterEqual(count_matching(lines, LIMIT_REACHED), 1)
        self.assertLessEqual(count_matching(lines, LIMIT_REACHED), rate_limited_bound(took + 1))
        self.assertEqual(count_matching(lines, r"accept\(\)"), 0)
        assert_recovered(self, d, base, f"flood of {self.N} {mode} connects", peak=rss.peak)
        self.assertEqual(d.stop(), 0)
        summary = d.summary()
        note(f"summary after the {mode} flood: {summary}")
        self.assertEqual(summary["busy"], len(got["busy"]))
        # ackd(8): "accepted counts connections, those answered ERR busy included".
        self.assertGreaterEqual(summary["accepted"], self.N, "accepted must count the ERR busy connections")

    def test_flood_line(self):
        self.flood(LINE)

    def test_flood_oneshot(self):
        self.flood(ONESHOT)


class FdExhaustionTests(AckdTestCase):
    def test_nofile_64_caps_connections_and_the_excess_get_busy(self):
        """Under ulimit -n 64 ackd caps max-connections itself, so 500 clients never run
        it out of fds: the excess are told ERR busy, nothing fails to accept."""
        d = self.start(*tcp_listeners(), nofile=64)
        cap = int(d.wait_log(r"allows; serving at most (\d+)").group(1))
        base = take_baseline(self, d)
        clients = [(LINE, b"hello\n"), (ONESHOT, b"hello")] * 250
        with RssSampler(d) as rss:
            cpu0 = d.cpu_seconds()
            sw, conns, took = run_flood(self, d, clients)
            cpu = d.cpu_seconds() - cpu0
            line, oneshot = classify(conns[LINE], "line"), classify(conns[ONESHOT], "oneshot")
            admitted = len(line["admitted"]) + len(oneshot["admitted"])
            busy = len(line["busy"]) + len(oneshot["busy"])
            note(f"nofile 64 (cap {cap}), 500 clients: {took:.2f} s, {admitted} answered "
                 f"({len(line['admitted'])} line), {busy} ERR busy, "
                 f"{len(line['other']) + len(oneshot['other'])} other; ackd CPU {cpu:.2f} s, "
                 f"peak fds {rss.peak_fds}")
            self.assertEqual(line["other"] + oneshot["other"], [])
            self.assertEqual(admitted + busy, 500)
            self.assertGreaterEqual(admitted, cap)
            self.assertGreater(busy, 0)
            self.assertLess(cpu, 1.0 * SLOWDOWN)
            for c in line["admitted"]:
                c.sock.setblocking(True)
                c.sock.settimeout(10)
                c.sock.sendall(b"again\n")
                self.assertEqual(recv_exactly(c.sock, len(ACK_LINE)), ACK_LINE)
            sw.close_all()
        self.assertLessEqual(rss.peak_fds, 64)
        self.assertEqual(count_matching(new_log_lines(d, base), r"accept\(\)"), 0,
                         "the cap keeps accept() from failing")
        assert_recovered(self, d, base, "nofile 64 with 500 clients", peak=rss.peak)
        self.assertEqual(d.stop(), 0)
        self.assertEqual(d.summary()["accept-errors"], 0)

    def test_emfile_pauses_accepting_instead_of_spinning(self):
        """40 fds ackd does not know about eat its budget under nofile 64, so accept()
        really fails with EMFILE: ackd must pause accepting (not spin), log that rarely,
        and serve every queued client once fds free up."""
        extra = [os.open(os.devnull, os.O_RDONLY) for _ in range(40)]
        try:
            d = self.start(*tcp_listeners(), nofile=64, pass_fds=extra)
        finally:
            for fd in extra:
                os.close(fd)
        base = take_baseline(self, d)
        free = 64 - base.fds
        n = 500
        t_start = time.monotonic()
        sw = Swarm(*d.address(0))
        with RssSampler(d) as rss:
            cpu0 = d.cpu_seconds()
            for k in range(n):         # odd ones line, even ones oneshot
                i = LINE if k % 2 else ONESHOT
                sw.open(payload=b"client %d\n" % k if i == LINE else b"client %d" % k, addr=d.address(i)[1])
            # Nobody leaves for 5 s: ackd has fds for a few, the rest wait in the backlog.
            sw.run_until(lambda: False, 5.0)
            episode = time.monotonic() - t_start
            cpu = d.cpu_seconds() - cpu0
            answered = [c for c in sw.conns if bytes(c.rx) in (ACK, ACK_LINE)]
            waiting = [c for c in sw.conns if not c.rx and not c.closed]
            note(f"EMFILE (nofile 64, {base.fds} fds in use, {free} free), {n} clients for {episode:.1f} s: "
                 f"{len(answered)} answered, {len(waiting)} waiting; ackd CPU {cpu:.2f} s; "
                 f"peak fds {rss.peak_fds}")
            self.assertEqual(len(answered) + len(waiting), n, "no client is refused or reset")
            self.assertGreater(len(answered), 0)
            self.assertLessEqual(len(answered), free)
            # Spinning on a readable listener whose accept() fails would burn both CPUs.
            self.assertLess(cpu, 0.5 * SLOWDOWN, f"ackd used {cpu:.2f} s of CPU in {episode:.1f} s: a busy loop?")

            # Clients leave once answered; the queued ones are then served in turn.
            def step():
                for c in sw.conns:
                    if c.rx and not c.left:
                        sw.leave(c)
                return all(c.left for c in sw.conns)
            self.assertTrue(sw.run_until(step, 30), f"{sum(not c.rx for c in sw.conns)} clients never answered")
            self.assertEqual([c.index for c in sw.conns if bytes(c.rx) != (ACK_LINE if c.index % 2 else ACK)], [])
            total = time.monotonic() - t_start
        lines = new_log_lines(d, base)
        warnings = count_matching(lines, ACCEPT_FAILED)
        note(f"EMFILE: all {n} answered after {total:.1f} s; {warnings} accept() warnings; "
             f"{len(lines)} log lines in all")
        self.assertGreaterEqual(warnings, 1)
        self.assertLessEqual(warnings, rate_limited_bound(total))
        self.assertLessEqual(len(lines), 2 * rate_limited_bound(total))
        assert_recovered(self, d, base, "EMFILE episode", peak=rss.peak)
        self.assertEqual(d.stop(), 0)
        summary = d.summary()
        note(f"EMFILE summary: {summary}")
        self.assertGreater(summary["accept-errors"], 0)
        self.assertEqual(summary["busy"], 0)


class SignalTests(AckdTestCase):
    WINDOW = 2048       # messages a pipelining client may have unacknowledged

    def pipelining_clients(self, sw, n, feeding=lambda: True, window=None, rcvbuf=None):
        """n line clients that each write 4-byte messages, up to window() (default WINDOW)
        ahead of their acks."""
        batch = b"msg\n" * 256
        window = window or (lambda: self.WINDOW)

        def feed(c):
            if feeding() and c.sent // 4 - len(c.rx) // len(ACK_LINE) < window():
                return batch
            return None
        return [sw.open(feed=feed, nodelay=True, rcvbuf=rcvbuf) for _ in range(n)]

    def test_sigterm_while_100_line_clients_pipeline(self):
        drain = 5
        d = self.start("-l", "line@127.0.0.1:0", "--drain-timeout", f"{drain}s")
        base = take_baseline(self, d)
        sw = Swarm(*d.address(0), close_on_eof=True)
        # 90 clients keep at most WINDOW messages unacknowledged; 10 write without limit
        # and stop reading for a while before the signal, so that ackd owes them acks it
        # cannot write yet (it has stopped reading them: their input waits unread). After
        # the signal they too wait for their acks before writing more.
        self.pipelining_clients(sw, 90)
        signalled = [False]
        # (A fixed receive buffer keeps what they must read after the signal to about
        # 4 MB each, ackd's socket buffer: quick to read, well within the 2 s linger.)
        deep = self.pipelining_clients(sw, 10, window=lambda: self.WINDOW if signalled[0] else 1 << 40,
                                       rcvbuf=65536)
        sw.run_until(lambda: False, 0.7)
        for c in deep:
            sw.stop_reading(c)
        sw.run_until(lambda: False, 0.5)
        unread = [server_rx_queue(d.port(), c.sock.getsockname()[1]) for c in deep]
        t_term = time.monotonic()
        d.signal(signal.SIGTERM)
        signalled[0] = True
        for c in deep:
            sw.resume_reading(c)
        # The clients go on writing; each reads until ackd closes it.
        all_closed = sw.run_until(lambda: all(c.closed for c in sw.conns), drain + 2)
        rc = d.wait(drain + 2)
        took = time.monotonic() - t_term
        sw.close_all()
        summary = d.summary()
        acks = [len(c.rx) // len(ACK_LINE) for c in sw.conns]
        note(f"SIGTERM under load: exit {rc} after {took:.2f} s (drain-timeout {drain} s); "
             f"{sum(acks)} acks to 100 clients ({min(acks)}..{max(acks)} each); input left unread by "
             f"backpressure at the signal for the 10 deep clients: {min(unread)}..{max(unread)} bytes; "
             f"closes: { {h: sum(c.how == h for c in sw.conns) for h in {c.how for c in sw.conns}} }; "
             f"summary {summary}")
        self.assertGreater(min(unread), 0, "the test needs ackd to owe acks at the signal")
        self.assertTrue(all_closed, "every client is closed by the end of the drain")
        self.assertEqual(rc, 0)
        self.assertLess(took, drain + 0.5 * SLOWDOWN)
        for c, n in zip(sw.conns, acks):
            self.assertGreater(n, 0)
            self.assertTrue(bytes(c.rx) == ACK_LINE * n, f"acks arrive whole and in order: {len(c.rx)} bytes")
            self.assertEqual(c.how, "eof")
            self.assertLessEqual(n, c.sent // 4, "never more acks than messages sent")
        self.assertEqual(summary["messages"], summary["acknowledged"])
        self.assertEqual(sum(acks) + base.acks, summary["acknowledged"])

    def test_sigterm_slow_reader_gets_every_ack_within_drain_timeout(self):
        """A line client that pipelined far ahead (about a million acks owed, most of them
        in ackd's socket buffer) goes on writing after SIGTERM and reads its acks at about
        1 MB/s: within drain-timeout it must get every one, whole, and then EOF."""
        drain = 10
        d = self.start("-l", "line@127.0.0.1:0", "--drain-timeout", f"{drain}s")
        base = take_baseline(self, d)
        s = d.connect()
        s.setblocking(False)
        received, how, sent, took = slow_reader(s, 1_000_000, drain + 3, b"m\n" * 32768, read_after=1.0,
                                                event=(1.0, lambda: d.signal(signal.SIGTERM)))
        s.close()
        rc = d.wait(drain + 2)
        summary = d.summary()
        n = len(received) // len(ACK_LINE)
        note(f"slow reader after SIGTERM: {sent // 2} messages sent, {n} acks + {len(received) % len(ACK_LINE)} "
             f"bytes received, then {how} after {took:.1f} s; exit {rc}; summary {summary}")
        self.assertEqual(rc, 0)
        self.assertEqual(how, "eof", "ackd must close gracefully, not reset a client still reading its acks")
        self.assertTrue(received == ACK_LINE * n, "acks arrive whole")
        self.assertEqual(summary["messages"], summary["acknowledged"])
        self.assertEqual(n + base.acks, summary["acknowledged"], "every ack counted as delivered reached the client")

    def test_100_sighups_under_load_drop_no_connection(self):
        d = self.start(*tcp_listeners())
        # Warm-up of the same shape: each reload gives every worker a new reply buffer
        # (64 KiB) and malloc settles on a few arenas' worth of them.
        for _ in range(20):
            d.signal(signal.SIGHUP)
            exchange(d, ONESHOT, b"x", half_close=False)
            time.sleep(0.01)
        d.wait_log(r"Reloaded: ")
        base = take_baseline(self, d)
        sw = Swarm(*d.address(LINE))
        feeding = [True]
        self.pipelining_clients(sw, 50, feeding=lambda: feeding[0])

        oneshot = {"ok": 0, "bad": []}
        stop = threading.Event()

        def oneshot_load():
            while not stop.is_set():
                try:
                    got = exchange(d, ONESHOT, b"Hello World!", half_close=False)
                except OSError as e:
                    got = repr(e)
                if got == ACK:
                    oneshot["ok"] += 1
                else:
                    oneshot["bad"].append(got)

        sighups = [0]

        def hup():
            for _ in range(100):
                d.signal(signal.SIGHUP)
                sighups[0] += 1
                time.sleep(0.02)

        with RssSampler(d) as rss:
            threads = [threading.Thread(target=oneshot_load), threading.Thread(target=hup)]
            for t in threads:
                t.start()
            sw.run_until(lambda: not threads[1].is_alive(), 30)
            sw.run_until(lambda: False, 0.3)
            stop.set()
            threads[0].join()
            feeding[0] = False
            # Every message sent gets its ack on a connection that is still open.
            settled = sw.run_until(lambda: all(c.tx is None and len(c.rx) == c.sent // 4 * len(ACK_LINE)
                                               for c in sw.conns), 10)
        lines = new_log_lines(d, base)
        reloads = count_matching(lines, r"Reloaded: ")
        acks = [len(c.rx) // len(ACK_LINE) for c in sw.conns]
        note(f"{sighups[0]} SIGHUPs under load: {reloads} reloads logged; 50 line clients got "
             f"{sum(acks)} acks ({min(acks)}..{max(acks)} each), {oneshot['ok']} oneshot exchanges, "
             f"{len(oneshot['bad'])} bad")
        self.assertEqual(sighups[0], 100)
        self.assertEqual([c.how for c in sw.conns if c.closed], [], "no line connection dropped")
        self.assertTrue(settled, "every message is acknowledged")
        for c in sw.conns:
            self.assertTrue(bytes(c.rx) == ACK_LINE * (c.sent // 4))
        self.assertEqual(oneshot["bad"][:5], [])
        self.assertGreater(oneshot["ok"], 100)
        self.assertGreater(min(acks), 0)
        # Signals that arrive together coalesce, so there may be fewer reloads than signals.
        self.assertGreaterEqual(reloads, 20)
        self.assertEqual([l for l in lines if re.search(r"error:|warning:|failed", l)], [])
        sw.close_all()
        assert_recovered(self, d, base, "100 SIGHUPs under load", peak=rss.peak)

    def test_kill9_and_immediate_restart_20_times(self):
        """With server-side TIME_WAIT and ESTABLISHED connections on its ports each time,
        ackd killed with SIGKILL and restarted at once binds on the first try."""
        ports = [free_port(), free_port()]
        args = ("-l", f"127.0.0.1:{ports[0]}", "-l", f"line@127.0.0.1:{ports[1]}")
        d = Ackd(*args)
        self.addCleanup(d.__exit__)
        ready_times = []
        for attempt in range(20):
            # Oneshot: ackd closes first, so its side of these ends in TIME_WAIT.
            for _ in range(10):
                self.assertEqual(exchange(d, ONESHOT, b"x", half_close=False), ACK)
            held = []
            for _ in range(3):
                s = d.connect(LINE)
                s.sendall(b"held\n")
                self.assertEqual(recv_exactly(s, len(ACK_LINE)), ACK_LINE)
                held.append(s)
            s = d.connect(ONESHOT)          # no message yet: TCP_DEFER_ACCEPT holds it in the kernel
            held.append(s)
            states = (tcp_states(ports[0]), tcp_states(ports[1]))
            self.assertGreater(states[0].get("TIME_WAIT", 0), 0, f"attempt {attempt}: {states}")
            self.assertGreaterEqual(states[1].get("ESTABLISHED", 0), 3, f"attempt {attempt}: {states}")

            d.proc.kill()
            d.wait()
            start = time.monotonic()
            d = Ackd(*args)                 # same ports, at once
            self.addCleanup(d.__exit__)
            ready_times.append(time.monotonic() - start)
            self.assertNotIn("Failed", d.log_text(), f"attempt {attempt}")
            self.assertEqual(exchange(d, ONESHOT, b"back"), ACK, f"attempt {attempt}")
            self.assertEqual(exchange(d, LINE, b"back\n"), ACK_LINE, f"attempt {attempt}")
            for s in held:
                s.close()
        note(f"kill -9 and restart x20: ready after {min(ready_times) * 1000:.0f}.."
             f"{max(ready_times) * 1000:.0f} ms; last TIME_WAIT/ESTABLISHED on the ports: {states}")
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    tap.main()
