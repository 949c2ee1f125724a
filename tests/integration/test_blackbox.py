#!/usr/bin/env python3
"""The shipped Prometheus blackbox_exporter module (docs/examples/blackbox.yml) run by
Debian's real prometheus-blackbox-exporter against the real ackd."""
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import tap
from ackdtest import SOURCE_ROOT, AckdTestCase, free_port, wait_until

EXPORTER = "/usr/bin/prometheus-blackbox-exporter"
EXAMPLE = os.path.join(SOURCE_ROOT, "docs", "examples", "blackbox.yml")


class BlackboxTests(AckdTestCase):
    @classmethod
    def setUpClass(cls):
        cls.proc = None
        if not os.access(EXPORTER, os.X_OK):
            return
        cls.tmp = tempfile.mkdtemp()
        cls.log = open(os.path.join(cls.tmp, "exporter.log"), "w+")
        cls.port = free_port()
        cls.proc = subprocess.Popen([EXPORTER, f"--config.file={EXAMPLE}",
                                     f"--web.listen-address=127.0.0.1:{cls.port}"],
                                    stdin=subprocess.DEVNULL, stdout=cls.log, stderr=subprocess.STDOUT)

    @classmethod
    def tearDownClass(cls):
        if cls.proc:
            cls.proc.terminate()
            cls.proc.wait(10)
            cls.log.close()
            shutil.rmtree(cls.tmp, True)

    def setUp(self):
        if not self.proc:
            self.skipTest(f"{EXPORTER} is not installed (Debian package prometheus-blackbox-exporter)")
        if not wait_until(lambda: self._get("/metrics"), timeout=10):
            self.fail("the exporter never answered; its log:\n" + open(self.log.name).read())

    def _get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as r:
                return r.read().decode()
        except OSError:
            return None

    def probe(self, target):
        text = self._get(f"/probe?module=ackd&target={target}")
        self.assertIsNotNone(text)
        m = re.search(r"^probe_success (\d+)$", text, re.M)
        self.assertIsNotNone(m, text)
        return int(m.group(1))

    def test_shipped_config_is_valid(self):
        r = subprocess.run([EXPORTER, f"--config.file={EXAMPLE}", "--config.check"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_success_against_ackd_in_both_modes(self):
        d = self.start("-v", "-l", "127.0.0.1:0", "-l", "line@127.0.0.1:0")
        for i in (0, 1):
            self.assertEqual(self.probe(f"127.0.0.1:{d.port(i)}"), 1)
        # The probe really went to ackd: both messages arrived, both were acknowledged.
        d.wait_log(r'Received: "Hello World!\\n" from 127\.0\.0\.1:\d+$')
        d.wait_log(r'Received: "Hello World!" from 127\.0\.0\.1:\d+$')
        self.assertEqual(d.stop(), 0)
        self.assertEqual(d.summary()["acknowledged"], 2)

    def test_failure_against_a_dead_port_and_a_wrong_reply(self):
        self.assertEqual(self.probe(f"127.0.0.1:{free_port()}"), 0)
        d = self.start("-l", "127.0.0.1:0", "--ack", "NAK!")
        start = time.monotonic()
        self.assertEqual(self.probe(f"127.0.0.1:{d.port()}"), 0)
        # Decided by the close after the reply, not by the module's 5s timeout.
        self.assertLess(time.monotonic() - start, 4)


if __name__ == "__main__":
    tap.main()
