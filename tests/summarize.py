#!/usr/bin/env python3
"""Counts test cases in meson test logs and prints "N passed, N failed".

Each meson test speaks TAP; every "ok"/"not ok" line is one case. A test that
died without reporting a failing case (crash, timeout) counts as one failure,
and so does a build directory without a test log (its build failed). A skipped
case is reported separately on a developer machine; with ACKD_TEST_STRICT=1
(CI) a skip is a failure, because CI installs everything every test needs.

usage: summarize.py LOG...

Each LOG is a meson test log (BUILDDIR/meson-logs/testlog.json, or
testlog-SETUP.json for `meson test --setup SETUP`), or a build directory.
"""
import json
import os
import re
import sys

TAP_LINE = re.compile(r"^(not ok|ok)\b(?:\s+\d+)?(?:\s*-?\s*)(.*?)(?:\s+#\s*(SKIP|TODO)\b(.*))?$", re.I)


def count(tests, strict):
    passed = failed = skipped = 0
    failures = []
    for t in tests:
        cases = [m for m in map(TAP_LINE.match, (t.get("stdout") or "").splitlines()) if m]
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
        if t["result"] not in ("OK", "EXPECTEDFAIL", "SKIP"):
            if bad == 0:
                failed += 1
                failures.append(f"{t['name']}: {t['result']}")
        elif not cases:
            if t["result"] == "SKIP" and strict:
                failed += 1
                failures.append(f"{t['name']}: skipped in CI")
            elif t["result"] == "SKIP":
                skipped += 1
            else:
                passed += 1
    return passed, failed, skipped, failures


def main():
    strict = os.environ.get("ACKD_TEST_STRICT") == "1"
    passed = failed = skipped = 0
    failures = []
    for arg in sys.argv[1:]:
        log = arg if arg.endswith(".json") else os.path.join(arg, "meson-logs", "testlog.json")
        build = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(log))))
        setup = re.match(r"testlog-(.+)\.json$", os.path.basename(log))
        label = f"{build} ({setup.group(1)})" if setup else build
        if not os.path.exists(log):
            failed += 1
            failures.append(f"{label}: no test log (the build or the test run failed)")
            continue
        with open(log) as f:
            tests = [json.loads(line) for line in f if line.strip()]
        for t in tests:
            t["name"] = f"{label}/{t['name']}"
        p, f_, s, fl = count(tests, strict)
        passed, failed, skipped = passed + p, failed + f_, skipped + s
        failures += fl
    for f in failures:
        print(f"FAILED: {f}")
    if skipped:
        print(f"({skipped} skipped: they need root or packages this machine lacks)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
