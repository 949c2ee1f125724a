#!/usr/bin/env python3
"""The command line and configuration file: every bad value is an error, never a default."""
import os
import re
import subprocess
import tempfile

import tap
from ackdtest import ACKD, ROOT_ARGS, SOURCE_ROOT, AckdTestCase


def run(*args, timeout=10):
    return subprocess.run([ACKD, *args], capture_output=True, text=True, timeout=timeout)


def help_options():
    out = run("--help").stdout
    return re.findall(r"--([a-z-]+)", out.split("\n\n", 2)[2])


class HelpTests(AckdTestCase):
    def test_help_lists_every_option_and_exits_zero(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for opt in ("listen", "threads", "max-connections", "max-message", "idle-timeout",
                    "drain-timeout", "ack", "log-level", "user", "allow-root", "config", "verbose", "version",
                    "help"):
            self.assertIn(f"--{opt}", r.stdout)
        for line in r.stdout.splitlines():
            self.assertLessEqual(len(line), 79, line)

    def test_man_pages_document_every_option(self):
        with open(os.path.join(SOURCE_ROOT, "man", "ackd.8.scd")) as f:
            man = f.read()
        with open(os.path.join(SOURCE_ROOT, "man", "ackd.conf.5.scd")) as f:
            conf = f.read()
        options = help_options()
        self.assertGreater(len(options), 10)
        for opt in options:
            self.assertIn(f"--{opt}", man, f"ackd(8) does not document --{opt}")
        # Every option the config file accepts is in ackd.conf(5).
        for opt in options:
            if opt in ("config", "verbose", "version", "help", "allow-root"):
                continue
            self.assertRegex(conf, rf"\*{re.escape(opt)}\*", f"ackd.conf(5) does not document {opt}")

    def test_man_pages_are_lint_clean(self):
        import glob
        import shutil
        if not shutil.which("mandoc"):
            self.skipTest("mandoc not installed")
        build = os.environ.get("ACKD_BUILD_ROOT") or os.path.join(SOURCE_ROOT, "build")
        pages = sorted(glob.glob(os.path.join(build, "man", "*.[1-8]")))
        self.assertGreaterEqual(len(pages), 2, "man pages were not built (scdoc missing?)")
        r = subprocess.run(["mandoc", "-Tlint", *pages], capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_version(self):
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^ackd \d+\.\d+\.\d+ \([+-]systemd\)\n$")


class UsageErrorTests(AckdTestCase):
    def assertUsageError(self, args, pattern):
        r = run(*args)
        self.assertEqual(r.returncode, 2, f"{args}: {r.stderr}")
        self.assertRegex(r.stderr, pattern)
        self.assertEqual(len(r.stderr.strip().splitlines()) <= 2, True, r.stderr)

    def test_unknown_option(self):
        self.assertUsageError(["--frobnicate"], r"ackd: unknown option '--frobnicate'")

    def test_missing_value(self):
        self.assertUsageError(["--max-message"], r"option '--max-message' needs a value")

    def test_unexpected_argument(self):
        self.assertUsageError(["stray"], r"unexpected argument 'stray'")

    def test_bad_values_name_the_option(self):
        cases = [
            (["-l", "bogus:address:1"], r"--listen: invalid address 'bogus:address:1'"),
            (["-l", "tcp@:1"], r"--listen: .*unknown mode"),
            (["-l", "1.2.3.4:70000"], r"--listen: .*port"),
            (["--threads", "0"], r"--threads: out of range"),
            (["--max-connections", "0"], r"--max-connections: out of range"),
            (["--max-connections", "ten"], r"--max-connections: invalid"),
            (["--max-message", "0"], r"--max-message: out of range"),
            (["--max-message", "17M"], r"--max-message: out of range"),
            (["--idle-timeout", "0"], r"--idle-timeout: out of range"),
            (["--idle-timeout", "soon"], r"--idle-timeout: invalid"),
            (["--drain-timeout", "-1"], r"--drain-timeout: invalid"),
            (["--ack", ""], r"--ack: expected 1 to 255 bytes"),
            (["--ack", "A" * 256], r"--ack: expected 1 to 255 bytes"),
            (["--ack", "two\nlines"], r"--ack: control characters"),
            (["--log-level", "loud"], r"--log-level: expected error, warning"),
        ]
        for args, pattern in cases:
            with self.subTest(args=args):
                self.assertUsageError(["-c", os.devnull, *args], pattern)

    def test_missing_config_file_named_explicitly(self):
        self.assertUsageError(["-c", "/nonexistent/ackd.conf"], r"/nonexistent/ackd.conf: No such file")

    def test_bad_config_file_names_file_and_line(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("# comment\n\nack = fine\nidle-timeout = never\n")
        self.addCleanup(os.unlink, f.name)
        self.assertUsageError(["-c", f.name], rf"{re.escape(f.name)}:4: idle-timeout: invalid")

    def test_unknown_key_in_config(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
            f.write("verbose = yes\n")
        self.addCleanup(os.unlink, f.name)
        self.assertUsageError(["-c", f.name], rf"{re.escape(f.name)}:1: unknown setting 'verbose'")


class ConfigTests(AckdTestCase):
    def test_config_file_applies_and_command_line_overrides(self):
        config = ("# ackd test configuration\n"
                  "listen = line@127.0.0.1:0\n"
                  "ack = \" FROM FILE \"\n"
                  "max-message = 2K\n")
        d = self.start(config=config)
        s = d.connect()
        s.sendall(b"x\n")
        self.assertEqual(s.recv(100), b" FROM FILE \n")

        d2 = self.start("--ack", "FROM CLI", config=config)
        s = d2.connect()
        s.sendall(b"x\n")
        self.assertEqual(s.recv(100), b"FROM CLI\n")

    def test_command_line_listen_replaces_file_listen(self):
        config = "listen = line@127.0.0.1:0\nlisten = line@127.0.0.1:0\n"
        d = self.start(config=config)
        self.assertEqual(len(d.listeners), 2)
        d2 = self.start("-l", "127.0.0.1:0", config=config)
        self.assertEqual([mode for _, mode in d2.listeners], ["oneshot"])


class JournalTests(AckdTestCase):
    def test_journal_stream_gets_priorities_and_no_timestamps(self):
        r, w = os.pipe()
        st = os.fstat(w)
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        p = subprocess.Popen([ACKD, "-c", os.devnull, "-l", "127.0.0.1:0", "--max-message", "0"],
                             stderr=w, env=env)
        os.close(w)
        out = os.read(r, 4096).decode()
        p.wait(10)
        os.close(r)
        self.assertEqual(p.returncode, 2)
        self.assertRegex(out, r"^<3>--max-message: out of range")

    def test_console_lines_have_timestamps(self):
        d = self.start("-l", "127.0.0.1:0")
        for line in d.log_lines():
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")

    def test_journal_priorities_while_running(self):
        r, w = os.pipe()
        st = os.fstat(w)
        env = dict(os.environ, JOURNAL_STREAM=f"{st.st_dev}:{st.st_ino}")
        p = subprocess.Popen([ACKD, "-c", os.devnull, "-l", "127.0.0.1:0", "-v", *ROOT_ARGS], stderr=w, env=env)
        os.close(w)
        buf = b""
        while b"Ready" not in buf:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            buf += chunk
        p.terminate()
        p.wait(10)
        os.close(r)
        lines = buf.decode().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<[0-7]>[A-Z]")
        self.assertTrue(any(l.startswith("<5>Listening on 127.0.0.1:") for l in lines), lines)


if __name__ == "__main__":
    tap.main()
