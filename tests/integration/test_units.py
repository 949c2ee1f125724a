#!/usr/bin/env python3
"""The systemd units, checked offline: systemd-analyze verify and security.

(The system test installs them under a real PID 1; this is the quick check
that runs everywhere.)
"""
import os
import re
import shutil
import subprocess
import tempfile

import tap
from ackdtest import ACKD, SOURCE_ROOT, AckdTestCase

BUILD_ROOT = os.environ.get("ACKD_BUILD_ROOT") or os.path.join(SOURCE_ROOT, "build")
UNITS = ["ackd.socket", "ackd-line.socket", "ackd.service", "ackd-inetd.socket", "ackd@.service"]


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


if __name__ == "__main__":
    tap.main()
