"""Test harness: runs the real ackd binary and talks to it over real sockets.

    with Ackd("-l", "127.0.0.1:0") as d:
        s = d.connect()            # first listener
        ...

ackd is started with port 0 where possible and the harness reads the bound
addresses from its "Listening on ..." log lines, so tests can run in parallel.

Instrumented runs (tools/dev test runs the suites under sanitizers and valgrind):

    ACKD_WRAPPER        a command to run ackd under, e.g. "valgrind --leak-check=full
                        --error-exitcode=1": prepended to the command line of every
                        Ackd() that does not pass its own executable=.
    ACKD_TIMEOUT_SCALE  multiplies every timeout the harness waits with (ready,
                        wait_log, wait, stop); 10 by default under ACKD_WRAPPER, else 1.
                        The timings tests assert themselves are not scaled.

Whatever the build, a sanitizer or valgrind report in a daemon's stderr fails the
test at cleanup. Under ACKD_WRAPPER, or when ackd is built with a sanitizer, a
daemon still running at cleanup is stopped with SIGTERM (twice if it drains)
instead of SIGKILL, so that it exits through its cleanup path, where
LeakSanitizer and valgrind look for leaks, and must exit 0. INSTRUMENTED is true
then: a test whose figures (RSS, CPU time, file descriptors) cannot hold under
instrumentation may check it.
"""
import fcntl
import os
import re
import resource
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

ACKD = os.environ.get("ACKD_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "src", "daemon", "ackd")
SOURCE_ROOT = os.environ.get("ACKD_SOURCE_ROOT") or os.path.join(os.path.dirname(__file__), "..", "..")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

# ackd refuses to serve as root without --user or --allow-root; tests that run
# as root (CI) say --allow-root unless they test exactly that.
ROOT_ARGS = ["--allow-root"] if os.geteuid() == 0 else []

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)

LISTENING = re.compile(r"Listening on (\S+) \(((?:oneshot|line)(?:\+proxy)?|metrics)")

WRAPPER = shlex.split(os.environ.get("ACKD_WRAPPER", ""))
TIMEOUT_SCALE = float(os.environ.get("ACKD_TIMEOUT_SCALE") or (10 if WRAPPER else 1))

# AddressSanitizer, LeakSanitizer, UndefinedBehaviorSanitizer, ThreadSanitizer and
# valgrind (with --error-exitcode, its ERROR SUMMARY counts leaks too). ackd's own
# lines start with a timestamp or a "<N>" priority, so a client cannot forge these.
SANITIZER_REPORT = re.compile(
    r"^(==\d+==\s*ERROR: \w*Sanitizer|WARNING: ThreadSanitizer|SUMMARY: \w*Sanitizer"
    r"|\S+:\d+:\d+: runtime error: "
    r"|==\d+== (Invalid (read|write|free)|Mismatched free|Conditional jump|Use of uninitialised"
    r"|Syscall param|Source and destination overlap|Process terminating|ERROR SUMMARY: [1-9]"
    r"|[\d,]+ bytes in [\d,]+ blocks are definitely lost))")


def _sanitized(path):
    """True when the binary at path is built with a sanitizer."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return any(s in data for s in (b"__asan_init", b"__tsan_init", b"__msan_init", b"__ubsan_handle_"))


# ackd runs under a wrapper or a sanitizer: it is stopped gracefully at cleanup, so
# that leak checks run at exit; its timings, RSS and file descriptor figures are
# not those of a plain build.
INSTRUMENTED = bool(WRAPPER) or _sanitized(ACKD)


class AckdError(Exception):
    pass


class Ackd:
    """One ackd process. Logs are collected from stderr by a thread."""

    def __init__(self, *args, config=None, env=None, wait_ready=True, timeout=10, pass_fds=(), executable=None,
                 nofile=None, root_args=True, preexec_fn=None, close_fds=True):
        self.args = list(args)
        if root_args and "--user" not in self.args:
            self.args = ROOT_ARGS + self.args
        self.config_file = None
        if config is not None:
            self.config_file = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
            self.config_file.write(config)
            self.config_file.close()
            self.args = ["-c", self.config_file.name] + self.args
        elif not any(a in ("-c", "--config") or a.startswith("--config=") for a in self.args):
            # Never read the host's /etc/ackd/ackd.conf in tests.
            self.args = ["-c", os.devnull] + self.args
        self.lines = []
        self.cond = threading.Condition()
        full_env = dict(os.environ)
        full_env.pop("LISTEN_FDS", None)
        full_env.pop("NOTIFY_SOCKET", None)
        full_env.pop("JOURNAL_STREAM", None)
        if env:
            full_env.update(env)
        def before_exec():
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
            if preexec_fn:
                preexec_fn()
        self.wrapped = not executable
        self.proc = subprocess.Popen(executable or WRAPPER + [ACKD] + self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=full_env, pass_fds=pass_fds, close_fds=close_fds,
                                     preexec_fn=before_exec if nofile or preexec_fn else None)
        self.pid = self.proc.pid
        # ackd drops the log lines a full pipe cannot take rather than wait (ackd(8),
        # LOGGING): give the reader thread room to fall behind during a burst.
        try:
            fcntl.fcntl(self.proc.stderr.fileno(), F_SETPIPE_SZ, 1 << 20)
        except OSError:
            pass
        self.reader = threading.Thread(target=self._read_logs, daemon=True)
        self.reader.start()
        self.listeners = []
        if wait_ready:
            self.wait_log(r"Ready: ", timeout)
            for line in self.log_lines():
                m = LISTENING.search(line)
                if m:
                    self.listeners.append((m.group(1), m.group(2)))

    def _read_logs(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    # --- logs ---------------------------------------------------------------
    def log_lines(self):
        with self.cond:
            return list(self.lines)

    def log_text(self):
        return "\n".join(self.log_lines())

    def summary(self):
        """The counters from the "Stopped: ..." line, as a dict (after the process exited)."""
        m = self.wait_log(r"Stopped: (.*)$")
        return {k: int(v) for k, v in (item.rsplit(" ", 1) for item in m.group(1).split(", "))}

    def wait_log(self, pattern, timeout=10, start=0):
        """Waits for a log line matching pattern (from line index start). Returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * TIMEOUT_SCALE
        with self.cond:
            while True:
                for line in self.lines[start:]:
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self.reader.is_alive()):
                    raise AckdError(f"no log line matching {pattern!r} (exit {self.proc.poll()}); log:\n"
                                    + "\n".join(self.lines))
                self.cond.wait(min(left, 0.1))

    # --- addresses ------------------------------------------------------------
    def address(self, i=0):
        """(family, sockaddr) of listener i."""
        name = self.listeners[i][0]
        if name.startswith("unix:"):
            path = name[5:]
            return socket.AF_UNIX, ("\0" + path[1:] if path.startswith("@") else path)
        m = re.match(r"^\[(.*)\]:(\d+)$", name)
        if m:
            host = m.group(1)
            return socket.AF_INET6, ("::1" if host == "::" else host, int(m.group(2)))
        host, port = name.rsplit(":", 1)
        return socket.AF_INET, ("127.0.0.1" if host == "0.0.0.0" else host, int(port))

    def port(self, i=0):
        return self.address(i)[1][1]

    def connect(self, i=0, timeout=10):
        family, addr = self.address(i)
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(addr)
        return s

    # --- process --------------------------------------------------------------
    def signal(self, sig):
        os.kill(self.pid, sig)

    def wait(self, timeout=15):
        try:
            return self.proc.wait(timeout * TIMEOUT_SCALE if timeout is not None else None)
        finally:
            self.reader.join(5)

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()

    def alive(self):
        return self.proc.poll() is None

    # --- resources ------------------------------------------------------------
    def rss_kb(self):
        with open(f"/proc/{self.pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KB

    def fd_count(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def cpu_seconds(self):
        """user+system CPU time of the whole process (all threads)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        stopped = INSTRUMENTED and self._stop_at_cleanup()
        self.kill()
        if self.config_file:
            os.unlink(self.config_file.name)
        reports = [line for line in self.log_lines() if SANITIZER_REPORT.match(line)]
        if reports:
            raise AckdError("sanitizer or valgrind report in ackd's stderr:\n" + self.log_text())
        if stopped and self.proc.returncode != 0:
            raise AckdError(f"ackd exited with status {self.proc.returncode} when stopped at cleanup; log:\n"
                            + self.log_text())

    def _stop_at_cleanup(self):
        """SIGTERM, and a second one (which skips the drain) if ackd is not gone within a
        second. True if an ackd the harness started itself (no executable=) was running
        and has now exited by itself."""
        if self.proc.poll() is not None:
            return False
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(1 * TIMEOUT_SCALE)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(15 * TIMEOUT_SCALE)
            except subprocess.TimeoutExpired:
                return False
        self.reader.join(5 * TIMEOUT_SCALE)
        return self.wrapped


def free_port():
    """A loopback TCP port nothing listens on right now (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def recv_all(s, limit=1 << 24):
    """Reads until EOF (or limit bytes)."""
    data = b""
    while len(data) < limit:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(min(65536, n - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def wait_until(predicate, timeout=10, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


class AckdTestCase(unittest.TestCase):
    """Starts ackd daemons for a test and always cleans them up."""

    def start(self, *args, **kw):
        d = Ackd(*args, **kw)
        self.addCleanup(d.__exit__)
        return d
