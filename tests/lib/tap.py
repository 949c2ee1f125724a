"""Runs a module's unittest cases and reports them in TAP for meson.

A skipped case prints "ok N - name # SKIP reason" on a developer machine; with
ACKD_TEST_STRICT=1 (set by CI, which installs everything) it is "not ok".

ACKD_TEST_EXCLUDE (whitespace-separated) leaves out the cases whose name
contains one of its words, for a configuration they cannot run in (tools/dev
test says why for each); they are listed as TAP comments, not run or counted.
"""
import os
import sys
import time
import traceback
import unittest


class TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.n = 0
        self.strict = os.environ.get("ACKD_TEST_STRICT") == "1"
        self.bad = 0

    def _emit(self, ok, test, suffix="", detail=None):
        self.n += 1
        print(f"{'ok' if ok else 'not ok'} {self.n} - {self._name(test)}{suffix}", flush=True)
        if detail:
            for line in detail.rstrip().splitlines():
                print(f"# {line}", flush=True)
        if not ok:
            self.bad += 1

    @staticmethod
    def _name(test):
        # A failing setUpClass is reported on an _ErrorHolder, which has no method name.
        method = getattr(test, "_testMethodName", None)
        return f"{type(test).__name__}.{method}" if method else str(test)

    def startTest(self, test):
        super().startTest(test)
        self._start = time.monotonic()
        print(f"# {self._name(test)} ...", flush=True)

    def addSuccess(self, test):
        # With failed subtests, unittest still calls addSuccess; stopTest reports those.
        if not getattr(test, "_tap_subtest_failures", None):
            self._emit(True, test, detail=f"took {time.monotonic() - self._start:.1f}s")

    def addFailure(self, test, err):
        self._emit(False, test, detail="".join(traceback.format_exception(*err)))

    def addError(self, test, err):
        self._emit(False, test, detail="".join(traceback.format_exception(*err)))

    def addSubTest(self, test, subtest, err):
        # A failing subTest fails its test case, with the subtest named in the diagnostics.
        if err is not None:
            if not hasattr(test, "_tap_subtest_failures"):
                test._tap_subtest_failures = []
            test._tap_subtest_failures.append(
                f"{subtest._subDescription()}:\n" + "".join(traceback.format_exception(*err)))

    def stopTest(self, test):
        failures = getattr(test, "_tap_subtest_failures", None)
        if failures:
            self._emit(False, test, detail="\n".join(failures))
        super().stopTest(test)

    def addSkip(self, test, reason):
        if self.strict:
            self._emit(False, test, detail=f"skipped, but CI must run it: {reason}")
        else:
            self._emit(True, test, f" # SKIP {reason}")

    def addExpectedFailure(self, test, err):
        self._emit(True, test, " # TODO expected failure")

    def addUnexpectedSuccess(self, test):
        self._emit(False, test, detail="unexpected success")


def _cases(suite):
    """The test cases of a suite, flattened."""
    flat = []
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            flat += _cases(t)
        else:
            flat.append(t)
    return flat


def main(module="__main__"):
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[module])
    if len(sys.argv) > 1:
        # Run only cases whose name contains one of the arguments.
        keep = sys.argv[1:]
        suite = unittest.TestSuite(t for t in _cases(suite) if any(k in t.id() for k in keep))
    exclude = os.environ.get("ACKD_TEST_EXCLUDE", "").split()
    if exclude:
        cases = _cases(suite)
        for t in cases:
            if any(k in t.id() for k in exclude):
                print(f"# excluded by ACKD_TEST_EXCLUDE: {t.id()}", flush=True)
        suite = unittest.TestSuite(t for t in cases if not any(k in t.id() for k in exclude))
    print(f"1..{suite.countTestCases()}", flush=True)
    result = TapResult()
    suite.run(result)
    sys.exit(1 if result.bad else 0)
