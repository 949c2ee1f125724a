"""Shared helpers of the fault and overload suites (test_faults.py, test_overload.py).

Every case follows one pattern: start ackd, take a baseline (fd count and RSS after
a warm-up exchange on every listener), do something hostile, then check that ackd
is alive, answers a fresh client on every listener, that its fd count comes back
exactly to the baseline and its RSS to within a tolerance:

    d = self.start(...)
    base = take_baseline(self, d)
    with RssSampler(d) as rss:
        ...                                   # the episode
    assert_recovered(self, d, base, "what", peak=rss.peak)

The figures each case measured are printed as TAP comments ("# ...").
"""
import calendar
import re
import selectors
import socket
import struct
import threading
import time

import ackdtest
from ackdtest import recv_all

ACK = b"ACK!"                   # oneshot reply
ACK_LINE = b"ACK!\n"            # line reply
BUSY = b"ERR busy\n"
TOO_LONG = b"ERR message too long\n"

# Why RSS may legitimately end a little above the baseline, with no leak: each worker
# reads into a 64 KiB scratch buffer whose pages are touched only by reads that large,
# keeps connection slabs (256 x 64 B = 16 KiB each) for reuse instead of freeing them,
# and malloc keeps a per-thread arena once a worker allocated a slab; a worker that the
# warm-up did not reach pays all of this on its first busy episode. Two workers: well
# under 512 KiB. Anything that stores a message, buffers acks or keeps per-connection
# buffers costs more than that in these cases (1 MiB messages, 1e6 acks, 5000 sockets).
RSS_TOLERANCE_KB = 512

# ackd under valgrind or a sanitizer (the harness's INSTRUMENTED, where it has it): its
# RSS is the tool's (shadow memory, quarantine), its CPU time and latencies several times
# a plain build's. Then RSS is measured but not asserted, and CPU-time and lateness
# bounds are multiplied by SLOWDOWN; everything the clients see is checked as always.
INSTRUMENTED = bool(getattr(ackdtest, "INSTRUMENTED", False))
SLOWDOWN = 5 if INSTRUMENTED else 1


def note(text):
    """A TAP comment: the figures a case measured."""
    print(f"# {text}", flush=True)


def mode_of(d, i):
    return d.listeners[i][1]


def reply_for(mode, n=1):
    return ACK if mode == "oneshot" else ACK_LINE * n


def rst_close(s):
    """Closes s with a TCP reset instead of a FIN (SO_LINGER with a zero timeout)."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def exchange(d, i, payload, half_close=True, timeout=10):
    """One client on listener i: send payload, optionally shut down writing, read to EOF."""
    s = d.connect(i, timeout=timeout)
    try:
        if mode_of(d, i) == "line":
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(payload)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        return recv_all(s)
    finally:
        s.close()


def fresh_client_answered(d, i, tries=50):
    """A new client on listener i is answered: b"ACK!" (oneshot) or one b"ACK!\\n" (line).
    Retries briefly while the answer is ERR busy (slots of closing connections are
    given back when ackd has processed the close)."""
    expect = reply_for(mode_of(d, i))
    msg = b"fresh client" if mode_of(d, i) == "oneshot" else b"fresh client\n"
    got = None
    for _ in range(tries):
        got = exchange(d, i, msg)
        if got != BUSY:
            break
        time.sleep(0.1)
    return got == expect, got


def wait_fds(d, target, timeout=10):
    """Polls ackd's fd count until it equals target (or timeout). Returns the last count."""
    deadline = time.monotonic() + timeout
    n = d.fd_count()
    while n != target and time.monotonic() < deadline:
        time.sleep(0.02)
        n = d.fd_count()
    return n


class Baseline:
    def __init__(self, fds, rss_kb, log_mark, acks):
        self.fds = fds
        self.rss_kb = rss_kb
        self.log_mark = log_mark    # log lines before the episode
        self.acks = acks            # messages the warm-up sent, each acknowledged


def warm_up(d):
    """One ordinary exchange per listener, plus a 64 KiB read on line listeners so that
    the scratch buffer of the worker that takes it is paged in. Returns the number of
    messages (and acks) it took."""
    acks = 0
    for i in range(len(d.listeners)):
        mode = mode_of(d, i)
        got = exchange(d, i, b"warm-up" if mode == "oneshot" else b"warm-up\n")
        assert got == reply_for(mode), f"warm-up on {d.listeners[i]}: {got!r}"
        acks += 1
        if mode == "line":
            got = exchange(d, i, b"w\n" * 40000)
            assert got == ACK_LINE * 40000, f"warm-up on {d.listeners[i]}: {len(got)} bytes"
            acks += 40000
    return acks


def take_baseline(tc, d):
    """fd count and RSS after start plus a warm-up exchange on every listener."""
    fds_at_start = d.fd_count()
    acks = warm_up(d)
    fds = wait_fds(d, fds_at_start)
    tc.assertEqual(fds, fds_at_start, "the warm-up exchanges must not leave fds behind")
    return Baseline(fds, d.rss_kb(), settled_log_mark(d), acks)


def settled_log_mark(d, quiet=0.1, timeout=2):
    """The number of log lines once the harness has read all ackd wrote (no new line for
    `quiet` seconds), so that what follows belongs to what the test does next."""
    n, since = len(d.log_lines()), time.monotonic()
    deadline = since + timeout
    while time.monotonic() < deadline:
        time.sleep(0.02)
        m = len(d.log_lines())
        if m != n:
            n, since = m, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return n


def new_log_lines(d, base):
    return d.log_lines()[base.log_mark:]


def assert_recovered(tc, d, base, what, peak=None, rss_tolerance_kb=RSS_TOLERANCE_KB, fd_timeout=10):
    """ackd is up, answers a fresh client on every listener, its fd count is back to the
    baseline exactly and its RSS within rss_tolerance_kb of it."""
    tc.assertTrue(d.alive(), f"{what}: ackd died; log:\n" + d.log_text()[-3000:])
    for i in range(len(d.listeners)):
        ok, got = fresh_client_answered(d, i)
        tc.assertTrue(ok, f"{what}: a fresh client on {d.listeners[i]} got {got!r}")
    fds = wait_fds(d, base.fds, fd_timeout)
    rss = d.rss_kb()
    peak_text = f"peak {peak} / " if peak is not None else ""
    note(f"{what}: fds {base.fds} -> {fds}; RSS {base.rss_kb} / {peak_text}after {rss} KiB "
         f"(+{rss - base.rss_kb}){' (not asserted: instrumented)' if INSTRUMENTED else ''}")
    tc.assertEqual(fds, base.fds, f"{what}: fd count must return to the baseline")
    if INSTRUMENTED:
        return
    tc.assertLessEqual(rss - base.rss_kb, rss_tolerance_kb, f"{what}: RSS must return to the baseline")
    if peak is not None:
        tc.assertLessEqual(peak - base.rss_kb, rss_tolerance_kb, f"{what}: RSS peak")


class RssSampler:
    """Samples ackd's RSS (and fd count) every few milliseconds in a thread; .peak and
    .peak_fds are the largest seen."""

    def __init__(self, d, interval=0.005):
        self.d = d
        self.interval = interval
        self.peak = d.rss_kb()
        self.peak_fds = d.fd_count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.d.rss_kb())
                self.peak_fds = max(self.peak_fds, self.d.fd_count())
            except (FileNotFoundError, ProcessLookupError, IndexError):
                return
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        try:
            self.peak = max(self.peak, self.d.rss_kb())
        except (FileNotFoundError, ProcessLookupError):
            pass


# --- many non-blocking clients in one event loop ---------------------------------

class Conn:
    """One client socket of a Swarm."""
    __slots__ = ("sock", "index", "t_start", "t_connected", "t_closed", "rx", "tx", "sent",
                 "feed", "how", "connected", "closed", "events", "done_reading", "left")

    def __init__(self, sock, index, payload, feed):
        self.sock = sock
        self.index = index
        self.t_start = time.monotonic()
        self.t_connected = None
        self.t_closed = None
        self.rx = bytearray()
        self.tx = memoryview(payload) if payload else None
        self.sent = 0
        self.feed = feed            # called when tx is empty: more bytes to send, or None
        self.how = None             # "eof", "reset", "refused" once closed
        self.connected = False
        self.closed = False
        self.events = 0
        self.done_reading = False
        self.left = False           # the client has closed its socket (Swarm.leave)


class Swarm:
    """Many non-blocking client connections driven by one epoll loop. Each connection
    sends its payload (and what its feed returns), reads everything, and records when
    it connected and when ackd closed it."""

    def __init__(self, family, addr, close_on_eof=False):
        self.family = family
        self.addr = addr
        self.close_on_eof = close_on_eof    # like most clients: close at EOF or reset
        self.sel = selectors.DefaultSelector()
        self.conns = []

    def open(self, payload=b"", feed=None, rcvbuf=None, nodelay=False, addr=None):
        s = socket.socket(self.family, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if nodelay:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        c = Conn(s, len(self.conns), payload, feed)
        self.conns.append(c)
        err = s.connect_ex(addr or self.addr)
        if err not in (0, 115):     # EINPROGRESS
            c.closed, c.how, c.t_closed = True, f"connect errno {err}", time.monotonic()
            s.close()
            return c
        c.events = selectors.EVENT_WRITE | selectors.EVENT_READ
        self.sel.register(s, c.events, c)
        return c

    def _set_events(self, c, events):
        if c.closed or events == c.events:
            return
        if not c.events:
            self.sel.register(c.sock, events, c)
        elif events:
            self.sel.modify(c.sock, events, c)
        else:
            self.sel.unregister(c.sock)
        c.events = events

    def _finish(self, c, how):
        c.closed, c.how, c.t_closed = True, how, time.monotonic()
        if c.events:
            self.sel.unregister(c.sock)
            c.events = 0
        if self.close_on_eof:
            c.sock.close()

    def leave(self, c):
        """The client closes c (a FIN; everything ackd sent has been read or is dropped)."""
        if not c.closed:
            self._finish(c, "left")
        c.sock.close()
        c.left = True

    def _write(self, c):
        """Sends what c has, asking its feed for more while the socket takes it. A feed
        that returns None now is asked again after the next read (a window)."""
        reading = 0 if c.done_reading else selectors.EVENT_READ
        budget = 1 << 20        # per call, so that a fast peer cannot keep us from reading
        while True:
            if budget <= 0:
                self._set_events(c, reading | selectors.EVENT_WRITE)
                return
            if c.tx is None or len(c.tx) == 0:
                more = c.feed(c) if c.feed else None
                if not more:
                    c.tx = None
                    self._set_events(c, reading)
                    return
                c.tx = memoryview(more)
            try:
                k = c.sock.send(c.tx)
            except BlockingIOError:
                self._set_events(c, reading | selectors.EVENT_WRITE)
                return
            except (BrokenPipeError, ConnectionResetError):
                c.tx = None
                c.feed = None
                self._set_events(c, reading)
                return
            c.sent += k
            budget -= k
            c.tx = c.tx[k:]

    def stop_reading(self, c):
        """Stops reading c (the client ignores its replies); it still sends."""
        c.done_reading = True
        self._set_events(c, c.events & ~selectors.EVENT_READ)

    def resume_reading(self, c):
        c.done_reading = False
        if not c.closed:
            self._set_events(c, c.events | selectors.EVENT_READ)

    def poll(self, timeout=0.05):
        for key, mask in self.sel.select(timeout):
            c = key.data
            if c.closed:
                continue
            if not c.connected and mask & (selectors.EVENT_WRITE | selectors.EVENT_READ):
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self._finish(c, "refused" if err == 111 else f"connect errno {err}")
                    continue
                c.connected = True
                c.t_connected = time.monotonic()
                if c.tx is None and not c.feed:
                    self._set_events(c, selectors.EVENT_READ)
            if mask & selectors.EVENT_WRITE and c.connected:
                self._write(c)
            if mask & selectors.EVENT_READ and not c.closed and not c.done_reading:
                try:
                    while True:
                        chunk = c.sock.recv(262144)
                        if not chunk:
                            self._finish(c, "eof")
                            break
                        c.rx += chunk
                        if len(chunk) < 262144:
                            break
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    self._finish(c, "reset")
                if c.feed and c.tx is None and not c.closed:
                    self._write(c)      # the window may have opened

    def run_until(self, predicate, timeout):
        """Polls until predicate() is true or timeout seconds passed. Returns predicate()."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.poll(min(left, 0.05))
        return predicate()

    def open_paced(self, n, seconds, **kw):
        """Opens n connections evenly over `seconds`, serving events meanwhile."""
        start = time.monotonic()
        for i in range(n):
            due = start + seconds * i / n
            while True:
                left = due - time.monotonic()
                if left <= 0:
                    break
                self.poll(left)
            self.open(**kw)
        return time.monotonic() - start

    def close_all(self):
        for c in self.conns:
            if c.events:
                self.sel.unregister(c.sock)
                c.events = 0
            c.sock.close()
        self.sel.close()


def slow_reader(s, rate, timeout, chunk, read_after=0.0, event=None):
    """A pipelining client that reads slowly: writes `chunk` whenever the non-blocking
    socket s takes it, and from `read_after` seconds on reads at most `rate` bytes a
    second, until EOF, a reset or `timeout`. event=(seconds, callable): called once, then.
    Returns (received bytes, how it ended, bytes sent, seconds from read_after to the end)."""
    sent, received, how = 0, bytearray(), None
    start = time.monotonic()
    while how is None and time.monotonic() - start < timeout:
        now = time.monotonic() - start
        if event and now >= event[0]:
            event[1]()
            event = None
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            pass
        except OSError as e:
            how = f"send failed: {e.strerror}"     # (a reset seen by send first)
        if now >= read_after and len(received) < rate * (now - read_after):
            try:
                data = s.recv(65536)
                if data:
                    received += data
                else:
                    how = "eof"
            except BlockingIOError:
                pass
            except ConnectionResetError:
                how = "reset"
        time.sleep(0.001)
    return received, how, sent, time.monotonic() - start - read_after


# --- log helpers ------------------------------------------------------------------

TIMESTAMP = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z ")


def log_time(line):
    """Seconds (wall clock, ms resolution) of a log line's timestamp, or None."""
    m = TIMESTAMP.match(line)
    if not m:
        return None
    y, mo, da, h, mi, s, ms = (int(x) for x in m.groups())
    return calendar.timegm((y, mo, da, h, mi, s)) + ms / 1000


def count_matching(lines, pattern):
    rx = re.compile(pattern)
    return sum(1 for l in lines if rx.search(l))


def server_rx_queue(server_port, client_port):
    """Bytes received but not yet read by the server side of a loopback TCP connection."""
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
                return int(queues.split(":")[1], 16)
    raise AssertionError(f"no TCP socket 127.0.0.1:{server_port} <- :{client_port} in /proc/net/tcp")


TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}


def tcp_states(local_port):
    """{state name: count} of the IPv4 TCP sockets whose local port is local_port
    (the server side of ackd's connections, listener included), from /proc/net/tcp."""
    counts = {}
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == local_port:
                state = TCP_STATES.get(int(fields[3], 16), fields[3])
                counts[state] = counts.get(state, 0) + 1
    return counts


