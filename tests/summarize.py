#!/usr/bin/env python3
"""Counts test cases in a meson test log and prints "N passed, N failed".

Each meson test speaks TAP; every "ok"/"not ok" line is one case. A test that
died without reporting a failing case (crash, timeout) counts as one failure.
A skipped case is reported separately on a developer machine; with
ACKD_TEST_STRICT=1 (CI) a skip is a failure, because CI installs everything
every test needs.

usage: summarize.py BUILDDIR
"""
import json
import os
import re
import sys

TAP_LINE = re.compile(r"^(not ok|ok)\b(?:\s+\d+)?(?:\s*-?\s*)(.*?)(?:\s+#\s*(SKIP|TODO)\b(.*))?$", re.I)


def main():
    log = os.path.join(sys.argv[1], "meson-logs", "testlog.json")
    strict = os.environ.get("ACKD_TEST_STRICT") == "1"
    passed = failed = skipped = 0
    failures = []
    with open(log) as f:
        for line in f:
            t = json.loads(line)
            cases = [TAP_LINE.match(l) for l in (t.get("stdout") or "").splitlines()]
            cases = [m for m in cases if m]
            bad = 0
            for m in cases:
                name = f"{t['name']}: {m.group(2)}"
                if m.group(3) and m.group(3).upper() == "SKIP":
                    if strict:
                        failed += 1
                        failures.append(f"{name} (skipped in CI:{m.group(4)})")
                    else:
                        skipped += 1
                elif m.group(1).lower() == "ok":
                    passed += 1
                else:
                    failed += 1
                    bad += 1
                    failures.append(name)
            if t["result"] not in ("OK", "EXPECTEDFAIL", "SKIP") and bad == 0:
                failed += 1
                failures.append(f"{t['name']}: {t['result']}")
            elif not cases and t["result"] == "OK":
                passed += 1
            elif not cases and t["result"] == "SKIP":
                if strict:
                    failed += 1
                    failures.append(f"{t['name']}: skipped in CI")
                else:
                    skipped += 1
    for f in failures:
        print(f"FAILED: {f}")
    if skipped:
        print(f"({skipped} skipped: they need root or packages this machine lacks)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
