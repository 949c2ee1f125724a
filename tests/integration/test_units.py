#!/usr/bin/env python3
"""The systemd units, checked offline: systemd-analyze verify and security.

(The system test installs them under a real PID 1; this is the quick check
that runs everywhere.)
"""
import os
import re
import shutil
import socket
import subprocess
import tempfile

import tap
from ackdtest import ACKD, ROOT_ARGS, SOURCE_ROOT, Ackd, AckdTestCase, free_port

BUILD_ROOT = os.environ.get("ACKD_BUILD_ROOT") or os.path.join(SOURCE_ROOT, "build")
UNITS = ["ackd.socket", "ackd-line.socket", "ackd-metrics.socket", "ackd.service", "ackd-inetd.socket",
         "ackd@.service"]
ACTIVATE = shutil.which("systemd-socket-activate")


def unit_settings(path):
    """[(section, key, value)] of a unit file, in order."""
    out, section = [], None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            elif line and not line.startswith(("#", ";")) and "=" in line:
                key, value = line.split("=", 1)
                out.append((section, key, value))
    return out


class UnitTests(AckdTestCase):
    def setUp(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze not installed (package systemd)")
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        for u in UNITS:
            src = os.path.join(BUILD_ROOT, "systemd", u)
            if not os.path.exists(src):
                src = os.path.join(SOURCE_ROOT, "systemd", u)
            with open(src) as f:
                text = f.read()
            # The installed path does not exist here; point ExecStart= at the built binary.
            text = re.sub(r"^ExecStart=\S+", f"ExecStart={os.path.abspath(ACKD)}", text, flags=re.M)
            with open(os.path.join(self.dir, u), "w") as f:
                f.write(text)
        os.symlink("ackd@.service", os.path.join(self.dir, "ackd-inetd@.service"))

    def test_verify_is_clean(self):
        r = subprocess.run(["systemd-analyze", "verify", "--man=no", *UNITS], cwd=self.dir,
                           capture_output=True, text=True)
        self.assertEqual((r.returncode, r.stdout + r.stderr), (0, ""))

    def test_security_exposure_at_most_1_0(self):
        for unit in ("ackd.service", "ackd@.service"):
            r = subprocess.run(["systemd-analyze", "security", "--offline=yes", os.path.join(self.dir, unit)],
                               capture_output=True, text=True)
            m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
            self.assertIsNotNone(m, r.stdout + r.stderr)
            print(f"# {unit}: exposure {m.group(1)}")
            self.assertLessEqual(float(m.group(1)), 1.0)


class MetricsSocketTests(AckdTestCase):
    """ackd-metrics.socket: loopback only, named metrics, feeding ackd.service, and installed
    but not enabled by both packages, like ackd-line.socket."""

    def setUp(self):
        self.unit = unit_settings(os.path.join(SOURCE_ROOT, "systemd", "ackd-metrics.socket"))

    def values(self, section, key):
        return [v for s, k, v in self.unit if (s, k) == (section, key)]

    def test_loopback_named_metrics_for_ackd_service(self):
        self.assertEqual(self.values("Socket", "ListenStream"), ["127.0.0.1:9990"])
        self.assertEqual(self.values("Socket", "FileDescriptorName"), ["metrics"])
        self.assertEqual(self.values("Socket", "Service"), ["ackd.service"])
        self.assertEqual(self.values("Install", "WantedBy"), ["sockets.target"])

    def test_its_socket_serves_metrics_when_activated(self):
        # What PID 1 would pass: the unit's FileDescriptorName on a loopback listener.
        if not ACTIVATE:
            self.skipTest("systemd-socket-activate not installed (package systemd)")
        port = free_port()
        name = self.values("Socket", "FileDescriptorName")[0]
        d = Ackd(executable=[ACTIVATE, "-l", f"127.0.0.1:{port}", f"--fdname={name}", ACKD, "-c", os.devnull,
                             *ROOT_ARGS], wait_ready=False)
        self.addCleanup(d.__exit__)
        d.wait_log(r"Listening on .* as 3")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"\r\n\r\nok\n"), data)

    def test_installed_not_enabled_by_the_packages(self):
        with open(os.path.join(SOURCE_ROOT, "packaging", "debian", "rules")) as f:
            rules = f.read()
        m = re.search(r"dh_installsystemd --no-enable --no-start --no-stop-on-upgrade \\\n\s*(.*)\n", rules)
        self.assertIsNotNone(m)
        self.assertEqual(m.group(1).split(), ["ackd-line.socket", "ackd-metrics.socket", "ackd-inetd.socket"])
        with open(os.path.join(SOURCE_ROOT, "packaging", "debian", "ackd.prerm")) as f:
            self.assertIn("ackd-metrics.socket", f.read())
        with open(os.path.join(SOURCE_ROOT, "packaging", "rpm", "ackd.spec")) as f:
            spec = f.read()
        self.assertIn("%{_unitdir}/ackd-metrics.socket\n", spec)
        for macro in ("%systemd_post", "%systemd_preun", "%systemd_postun"):
            line = re.search("^" + macro + " (.*)$", spec, re.M).group(1).split()
            self.assertIn("ackd-metrics.socket", line, macro)
        with open(os.path.join(SOURCE_ROOT, "systemd", "meson.build")) as f:
            self.assertIn("'ackd-metrics.socket'", f.read())


if __name__ == "__main__":
    tap.main()
