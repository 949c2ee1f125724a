#!/usr/bin/env python3
"""Root: refused without --user/--allow-root; with --user, dropped entirely after binding."""
import os
import pwd
import socket
import subprocess

import tap
from ackdtest import ACKD, AckdTestCase, recv_all


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


if __name__ == "__main__":
    tap.main()
