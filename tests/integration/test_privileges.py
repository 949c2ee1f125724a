#!/usr/bin/env python3
"""Root: refused without --user/--allow-root; with --user, dropped entirely after binding."""
import os
import pwd
import signal
import socket
import stat
import subprocess
import tempfile

import tap
from ackdtest import ACKD, WRAPPER, AckdTestCase, recv_all, wait_until


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def free_low_port():
    for port in range(600, 1000):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port below 1024")


class PrivilegeTests(AckdTestCase):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root")
        self.nobody = pwd.getpwnam("nobody")

    def test_root_without_user_or_allow_root_is_refused(self):
        r = subprocess.run([ACKD, "-c", os.devnull, "-l", "127.0.0.1:0"], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("Refusing to serve as root: use --user NAME", r.stderr)

    def test_user_binds_privileged_port_then_drops_everything(self):
        port = free_low_port()
        d = self.start("-l", f"127.0.0.1:{port}", "--user", "nobody")
        d.wait_log(r"Running as user nobody \(uid \d+, gid \d+\) without capabilities")
        st = proc_status(d.pid)
        uid, gid = str(self.nobody.pw_uid), str(self.nobody.pw_gid)
        self.assertEqual(st["Uid"].split(), [uid] * 4)
        self.assertEqual(st["Gid"].split(), [gid] * 4)
        self.assertEqual(st["Groups"].strip(), "")
        for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            self.assertEqual(int(st[cap], 16), 0, f"{cap} = {st[cap]}")
        self.assertEqual(st["NoNewPrivs"].strip(), "1")
        # Every thread, not just the main one.
        for tid in os.listdir(f"/proc/{d.pid}/task"):
            with open(f"/proc/{d.pid}/task/{tid}/status") as f:
                self.assertIn(f"Uid:\t{uid}\t{uid}\t{uid}\t{uid}", f.read())
        s = d.connect()
        s.sendall(b"from a privileged port")
        self.assertEqual(recv_all(s), b"ACK!")

    def test_unknown_user_is_a_usage_error(self):
        r = subprocess.run([ACKD, "-c", os.devnull, "--user", "no-such-user-ackd"], capture_output=True,
                           text=True, timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--user no-such-user-ackd: no such user", r.stderr)

    def test_user_root_is_refused(self):
        r = subprocess.run([ACKD, "-c", os.devnull, "--user", "root"], capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(r.returncode, 2)
        self.assertIn("that is root", r.stderr)

    def test_non_root_cannot_switch_user(self):
        def become_nobody():
            os.setgroups([])
            os.setgid(self.nobody.pw_gid)
            os.setuid(self.nobody.pw_uid)
        r = subprocess.run([ACKD, "-c", os.devnull, "-l", "127.0.0.1:0", "--user", "daemon"],
                           capture_output=True, text=True, timeout=10, preexec_fn=become_nobody)
        self.assertEqual(r.returncode, 2)
        self.assertIn("only root can switch users", r.stderr)

    def test_allow_root_serves_as_root(self):
        d = self.start("-l", "127.0.0.1:0")   # the harness adds --allow-root as root
        self.assertEqual(proc_status(d.pid)["Uid"].split()[1], "0")
        s = d.connect()
        s.sendall(b"x")
        self.assertEqual(recv_all(s), b"ACK!")


def children(pid):
    """{pid: name} of the processes whose parent is pid."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                head, rest = f.read().rsplit(")", 1)
        except OSError:
            continue
        if int(rest.split()[1]) == pid:
            found[int(entry)] = head.split("(", 1)[1]
    return found


def gone(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class SocketFileTests(AckdTestCase):
    """With --user, the socket files ackd created are removed at exit all the same."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root")
        self.nobody = pwd.getpwnam("nobody")
        self.dir = tempfile.mkdtemp(prefix="ackd-sockets-")
        self.addCleanup(subprocess.run, ["rm", "-rf", self.dir])
        os.chmod(self.dir, 0o755)       # root's, and nobody may not write it
        self.path = os.path.join(self.dir, "s.sock")

    def start_as_nobody(self, *extra, executable=None):
        args = ["-c", os.devnull, "--user", "nobody", "-l", f"unix:{self.path}",
                "-l", f"line@unix:{self.path}.line", *extra]
        if executable:
            d = self.start(executable=executable + WRAPPER + [ACKD] + args)
        else:
            d = self.start(*args)
        d.wait_log(r"Running as user nobody")
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.path)
        s.sendall(b"x")
        self.assertEqual(recv_all(s), b"ACK!")
        return d

    def helper(self, d):
        """The pid of ackd's cleanup helper; checks it keeps root and holds no socket."""
        # (It names itself just after the fork, so it may still be called "ackd" for a moment.)
        kids = wait_until(lambda: [pid for pid, name in children(d.pid).items() if name == "ackd-cleanup"],
                          timeout=5)
        self.assertEqual(len(kids), 1, f"children of ackd: {children(d.pid)}")
        pid = kids[0]
        with open(f"/proc/{pid}/status") as f:
            self.assertIn("Uid:\t0\t0\t0\t0", f.read())
        fds = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        self.assertFalse([t for t in fds if t.startswith("socket:")], f"helper holds {fds}")
        return pid

    def assert_removed(self, pid):
        self.assertTrue(wait_until(lambda: gone(pid), timeout=5), "the helper did not exit")
        self.assertFalse(os.path.exists(self.path))
        self.assertFalse(os.path.exists(self.path + ".line"))

    def test_sigterm_removes_socket_files_in_a_root_directory(self):
        d = self.start_as_nobody()
        pid = self.helper(d)
        self.assertEqual(d.stop(), 0)
        self.assertNotIn("Failed to remove", d.log_text())
        self.assert_removed(pid)

    def test_sigint_to_the_whole_process_group_removes_them_too(self):
        # As a Ctrl-C in a terminal does: the helper gets the SIGINT as well.
        d = self.start_as_nobody(executable=["setsid"])
        self.assertEqual(os.getpgid(d.pid), d.pid)
        pid = self.helper(d)
        self.assertEqual(os.getpgid(pid), d.pid)
        os.killpg(d.pid, signal.SIGINT)
        self.assertEqual(d.wait(), 0)
        self.assert_removed(pid)

    def test_removed_even_when_ackd_is_killed(self):
        d = self.start_as_nobody()
        pid = self.helper(d)
        d.kill()
        self.assert_removed(pid)

    def test_a_replaced_file_is_left_alone(self):
        d = self.start_as_nobody()
        pid = self.helper(d)
        # Another instance (or the admin) put its own socket there meanwhile.
        os.unlink(self.path)
        other = socket.socket(socket.AF_UNIX)
        other.bind(self.path)
        self.addCleanup(other.close)
        ino = os.lstat(self.path).st_ino
        self.assertEqual(d.stop(), 0)
        self.assertTrue(wait_until(lambda: gone(pid), timeout=5))
        self.assertEqual(os.lstat(self.path).st_ino, ino)
        self.assertFalse(os.path.exists(self.path + ".line"))
        d.wait_log(rf"Leaving {self.path} alone: it is no longer the socket file ackd created")

    def test_helper_for_a_sticky_or_unreachable_directory(self):
        # World-writable but sticky, as /tmp: only the file's owner (root) may remove it.
        os.chmod(self.dir, 0o1777)
        d = self.start_as_nobody()
        pid = self.helper(d)
        self.assertEqual(d.stop(), 0)
        self.assert_removed(pid)

        # Writable, inside a directory nobody may not even search.
        os.chmod(self.dir, 0o700)
        inner = os.path.join(self.dir, "inner")
        os.mkdir(inner)
        os.chmod(inner, 0o777)
        self.path = os.path.join(inner, "s.sock")
        d = self.start_as_nobody()
        pid = self.helper(d)
        self.assertEqual(d.stop(), 0)
        self.assert_removed(pid)

    def test_no_helper_where_the_user_can_remove_the_files(self):
        os.chown(self.dir, self.nobody.pw_uid, self.nobody.pw_gid)
        d = self.start_as_nobody()
        self.assertEqual(children(d.pid), {})
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(self.path))
        self.assertFalse(os.path.exists(self.path + ".line"))

    def test_a_file_that_cannot_be_removed_is_logged(self):
        # nobody could remove it at start, so no helper; then the directory changes hands.
        os.chown(self.dir, self.nobody.pw_uid, self.nobody.pw_gid)
        d = self.start_as_nobody()
        os.chown(self.dir, 0, 0)
        self.assertEqual(d.stop(), 0)
        self.assertTrue(os.path.exists(self.path))
        d.wait_log(rf"warning: Failed to remove socket file {self.path}: Permission denied")


if __name__ == "__main__":
    tap.main()
