#!/usr/bin/env python3
"""Logging never stalls ackd: a standard error nobody reads costs lines, not service.

The harness reads ackd's stderr through a pipe of its own, so these tests start
ackd themselves, with stderr on a FIFO, a terminal or a socket that the test holds
and fills, and read it only when a case says so.
"""
import fcntl
import json
import os
import re
import select
import signal
import socket
import stat
import statistics
import subprocess
import tempfile
import termios
import time
import unittest

import tap
from ackdtest import ACKD, ROOT_ARGS, SANITIZER_REPORT, TIMEOUT_SCALE, WRAPPER

ACKC = os.environ.get("ACKC_BIN") or os.path.join(os.path.dirname(ACKD), "..", "client", "ackc")
LISTENING = re.compile(r"Listening on 127\.0\.0\.1:(\d+) ")
DRAIN_TIMEOUT = 3      # seconds, passed to ackd as --drain-timeout
BENCH_RUNS = 3         # benchmark runs per sink; the medians are compared
FILLER = b"\0"         # a byte ackd never logs


def fill(fd):
    """Writes to fd until it takes nothing more, not even one byte. Never changes the
    flags of fd's description: for a socket that is ackd's own."""
    sock = socket.socket(fileno=os.dup(fd)) if stat.S_ISSOCK(os.fstat(fd).st_mode) else None
    if sock is None:
        os.set_blocking(fd, False)
    try:
        for chunk in (FILLER * 4096, FILLER):
            while try_write(fd, sock, chunk):
                pass
    finally:
        if sock:
            sock.close()


def try_write(fd, sock, data):
    try:
        if sock:
            sock.send(data, socket.MSG_DONTWAIT)
        else:
            os.write(fd, data)
        return True
    except BlockingIOError:
        return False


def still_full(fd):
    return not try_write(fd, None, FILLER)


def exchange(port, mode, timeout=5):
    """One message and its reply, on a new connection. The connection stays open in line mode."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if mode == "line":
        s.sendall(b"probe\n")
        want = b"ACK!\n"
    else:
        s.sendall(b"probe")
        want = b"ACK!"
    got = b""
    while len(got) < len(want):
        chunk = s.recv(64)
        if not chunk:
            break
        got += chunk
    if mode != "line":
        s.close()
    return got == want, s


class Sink:
    """ackd's standard error: what the test reads from (read_fd) and fills (fill_fd)."""

    def __init__(self, kind):
        self.kind = kind
        self.env = {}
        self.text = ""
        self.path = None
        if kind == "fifo":
            # As in `ackd 2>FIFO` with the reader stuck: the test holds the FIFO open
            # read-write (so a reader exists) and reads it only when a case says so.
            self.dir = tempfile.mkdtemp(prefix="ackd-logging-")
            self.path = os.path.join(self.dir, "stderr")
            os.mkfifo(self.path)
            self.read_fd = self.fill_fd = os.open(self.path, os.O_RDWR)
            self.child_fd = os.open(self.path, os.O_WRONLY)
        elif kind == "tty":
            self.read_fd, self.child_fd = os.openpty()
            self.fill_fd = None
        elif kind == "socket":
            # The journal's stream: JOURNAL_STREAM names it, so lines carry "<N>" priorities.
            a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self.child_fd = a.detach()
            self.read_fd = b.detach()
            self.fill_fd = os.dup(self.child_fd)
            st = os.fstat(self.child_fd)
            self.env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        os.set_blocking(self.read_fd, False)

    def stop(self):
        """Makes the sink take nothing: filled to the brim, or a terminal's output stopped (Ctrl-S)."""
        if self.kind == "tty":
            termios.tcflow(self.child_fd, termios.TCOOFF)
        else:
            fill(self.fill_fd)

    def resume(self):
        """Lets it take lines again: the terminal's output restarted (Ctrl-Q), or everything
        read. Returns what was read: the filler, and whatever ackd got through."""
        if self.kind == "tty":
            termios.tcflow(self.child_fd, termios.TCOON)
        return self.read_available()

    def read_available(self):
        chunks = []
        while True:
            try:
                chunk = os.read(self.read_fd, 65536)
            except (BlockingIOError, OSError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        text = b"".join(chunks).replace(FILLER, b"").decode("utf-8", "replace").replace("\r\n", "\n")
        self.text += text
        return text

    def read_until(self, pattern, start=0, timeout=10):
        """Reads until what was read from offset start on matches pattern; returns the match."""
        rx = re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout * TIMEOUT_SCALE
        while True:
            m = rx.search(self.text, start)
            if m:
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line matching {pattern!r} in ackd's stderr:\n{self.text}")
            select.select([self.read_fd], [], [], min(left, 0.2))
            self.read_available()

    def close(self):
        for fd in {self.read_fd, self.child_fd, self.fill_fd} - {None}:
            try:
                os.close(fd)
            except OSError:
                pass
        if self.path:
            os.unlink(self.path)
            os.rmdir(self.dir)


class Daemon:
    """ackd with its stderr on fd (or /dev/null when fd is None)."""

    def __init__(self, args, fd=None, env=None):
        full_env = {k: v for k, v in os.environ.items() if k not in ("LISTEN_FDS", "NOTIFY_SOCKET", "JOURNAL_STREAM")}
        full_env.update(env or {})
        self.proc = subprocess.Popen(WRAPPER + [ACKD] + ROOT_ARGS + ["-c", os.devnull] + args,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=fd if fd is not None else subprocess.DEVNULL, env=full_env)

    def terminate(self):
        """SIGTERM; returns (exit status, seconds it took), or (None, ...) if it did not exit in time."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(DRAIN_TIMEOUT * TIMEOUT_SCALE)
        except subprocess.TimeoutExpired:
            status = None
        return status, time.monotonic() - start

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class LoggingTestCase(unittest.TestCase):
    def sink(self, kind):
        sink = Sink(kind)
        self.addCleanup(self._close_sink, sink)
        return sink

    def _close_sink(self, sink):
        # A sanitizer report goes to fd 2, that is to this sink: look for one.
        sink.read_available()
        sink.close()
        reports = [line for line in sink.text.splitlines() if SANITIZER_REPORT.match(line)]
        if reports:
            raise AssertionError("sanitizer report in ackd's stderr:\n" + sink.text)

    def daemon(self, args, sink=None):
        d = Daemon(args, sink.child_fd if sink else None, sink.env if sink else None)
        self.addCleanup(d.kill)
        return d

    def start_on(self, sink, listen, *args):
        """Starts ackd -v with stderr on sink; returns (daemon, port) once it is ready."""
        d = self.daemon(["-v", "-l", listen, "--drain-timeout", f"{DRAIN_TIMEOUT}s", *args], sink)
        port = int(sink.read_until(LISTENING.pattern).group(1))
        sink.read_until(r"Ready: ")
        return d, port

    def start_quiet(self, mode):
        """Starts ackd -v with stderr on /dev/null; returns (daemon, port) once it answers.
        With no log to read the port from, it is looked up in /proc (a port picked in
        advance could be taken by someone else's server in between)."""
        d = self.daemon(["-v", "-l", f"{mode}@127.0.0.1:0", "--drain-timeout", f"{DRAIN_TIMEOUT}s"])
        deadline = time.monotonic() + 10 * TIMEOUT_SCALE
        while True:
            port = listening_port(d.proc.pid)
            if port:
                ok, s = exchange(port, mode)
                s.close()
                self.assertTrue(ok)
                return d, port
            self.assertIsNone(d.proc.poll(), "ackd exited")
            self.assertLess(time.monotonic(), deadline, "ackd did not listen")
            time.sleep(0.05)


def listening_port(pid):
    """The port of the (one) TCP socket process pid listens on, or None."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            m = re.match(r"socket:\[(\d+)\]$", os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue
        if m:
            inodes.add(m.group(1))
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:      # TCP_LISTEN
                return int(fields[1].rsplit(":", 1)[1], 16)
    return None


def bench(port, mode):
    r = subprocess.run([ACKC, "bench", "-H", "127.0.0.1", "-p", str(port), "-m", mode, "-c", "10", "-d", "3",
                        "--timeout", "1s", "--json"], capture_output=True, text=True, timeout=30)
    return json.loads(r.stdout)


class StuckReaderTests(LoggingTestCase):
    """The issue's case: ackd -v with stderr on a FIFO that is never read, under load."""

    def check_mode(self, mode):
        fifo = self.sink("fifo")
        stuck, stuck_port = self.start_on(fifo, f"{mode}@127.0.0.1:0")
        fifo.stop()
        quiet, quiet_port = self.start_quiet(mode)

        # Interleaved, so that both see the same noise from the rest of the machine.
        runs = {"fifo": [], "null": []}
        for _ in range(BENCH_RUNS):
            runs["null"].append(bench(quiet_port, mode))
            runs["fifo"].append(bench(stuck_port, mode))
        self.assertTrue(still_full(fifo.fill_fd), "the FIFO must stay full throughout")
        # Its stderr is /dev/null: a sanitizer's finding shows only in the exit status.
        self.assertEqual(quiet.terminate()[0], 0)

        for kind, results in runs.items():
            self.assertEqual([r["errors_total"] for r in results], [0] * BENCH_RUNS,
                             f"errors with stderr on {kind}: {[r['errors'] for r in results]}")
            self.assertTrue(all(r["requests"] > 0 for r in results))
        summary = {k: {"requests": [r["requests"] for r in v],
                       "throughput": statistics.median(r["throughput_per_s"] for r in v),
                       "p50": statistics.median(r["latency_us"]["p50"] for r in v),
                       "p99": statistics.median(r["latency_us"]["p99"] for r in v)} for k, v in runs.items()}
        print(f"# {mode}: {json.dumps(summary)}", flush=True)
        # Two ackd and the client share 2 cores with whatever else runs: a single 3 s
        # run varies by up to 2x on this VM, the median of 3 by less. Over 20 looped runs
        # of this suite, next to other builds and tests, FIFO/null ratios of the medians
        # were 0.61-1.41 for throughput, 0.65-1.46 for p50 latency, 0.26-1.76 for p99;
        # over 20 under AddressSanitizer, 0.67-1.35, 0.49-1.34 and 0.23-2.36. A
        # stalled logger makes throughput fall to nothing and latency reach the 1 s
        # timeout, so half the throughput, twice the p50 and three times the p99 (plus
        # 1 or 2 ms, against scheduling hiccups at sub-millisecond latencies) tell the
        # two apart without flaking.
        self.assertGreater(summary["fifo"]["throughput"], 0.5 * summary["null"]["throughput"])
        self.assertLess(summary["fifo"]["p50"], 2 * summary["null"]["p50"] + 1000)
        self.assertLess(summary["fifo"]["p99"], 3 * summary["null"]["p99"] + 2000)

        # The stop is logged too, into the same full FIFO: it must not wait for it. A line
        # connection that is still open is closed by the drain.
        ok, s = exchange(stuck_port, mode)
        self.assertTrue(ok)
        status, took = stuck.terminate()
        s.close()
        self.assertEqual(status, 0, f"SIGTERM with the FIFO unread: exit status {status} after {took:.1f}s")
        self.assertLess(took, DRAIN_TIMEOUT)
        self.assertTrue(still_full(fifo.fill_fd))

    def test_oneshot_serves_at_full_speed_and_stops(self):
        self.check_mode("oneshot")

    def test_line_serves_at_full_speed_and_stops(self):
        self.check_mode("line")


class ResumeTests(LoggingTestCase):
    """Once the sink takes lines again, ackd says how many it dropped, exactly."""

    EXCHANGES = 5
    LINES_PER_EXCHANGE = 2      # at -v: "Accepted connection from ..." and "Received: ..."
    TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "

    def check_sink(self, kind, prefix):
        sink = self.sink(kind)
        d, port = self.start_on(sink, "127.0.0.1:0")
        sink.stop()
        for _ in range(self.EXCHANGES):
            ok, _ = exchange(port, "oneshot")
            self.assertTrue(ok)
        # Nothing of ackd's got in while the sink was stopped.
        self.assertEqual(sink.resume().strip(), "")

        ok, _ = exchange(port, "oneshot")
        self.assertTrue(ok)
        m = sink.read_until(r"^(.*?)(\d+) log lines? dropped: standard error was not taking them\n")
        self.assertRegex(m.group(1), f"^{prefix}$")
        self.assertEqual(int(m.group(2)), self.EXCHANGES * self.LINES_PER_EXCHANGE)
        # Then the lines of the exchange that got through.
        sink.read_until(r"Received: \"probe\"", m.end())
        self.assertRegex(sink.text[m.end():], f"^(<6>|{self.TIMESTAMP})Accepted connection from 127\\.0\\.0\\.1:\\d+\n")

        # And a stop with the sink stopped again still exits at once.
        sink.stop()
        status, took = d.terminate()
        self.assertEqual(status, 0, f"exit status {status} after {took:.1f}s")
        self.assertLess(took, DRAIN_TIMEOUT)

    def test_fifo(self):
        self.check_sink("fifo", self.TIMESTAMP + "warning: ")

    def test_terminal_with_output_stopped(self):
        # As after Ctrl-S: the terminal takes no output at all.
        self.check_sink("tty", self.TIMESTAMP + "warning: ")

    def test_journal_stream_socket(self):
        self.check_sink("socket", "<4>")


class SharedDescriptionTests(LoggingTestCase):
    def test_stderr_file_description_stays_blocking(self):
        # ackd must not make the description it shares with its parent (a shell's
        # terminal, a pipe) non-blocking: it writes through a private one instead.
        fifo = self.sink("fifo")
        d, port = self.start_on(fifo, "127.0.0.1:0")
        fifo.stop()
        ok, _ = exchange(port, "oneshot")
        self.assertTrue(ok)
        self.assertFalse(fcntl.fcntl(fifo.child_fd, fcntl.F_GETFL) & os.O_NONBLOCK)


if __name__ == "__main__":
    tap.main()
