"""How much slower than a normal machine of its kind the machine under test runs. The e2e tests
(tests/e2e/conftest.py) bound only two kinds of wait: a guard against a hang, where ending at all is
the behaviour (a timeout fires, a killed call ends rather than hangs), and a poll for something
that will appear (a record, a connection). slow(seconds) stretches such a bound by this factor.

The factor is measured once per test session (factor() caches it): the median of five samples, each one start of the
interpreter (`python3 -c pass`) and ten fork/execs of /bin/true, divided by the same figure on an
unloaded 2-core machine of the kind the project is developed on. Process start-up is what most of
the timed paths do (sandboxes, runners, the server itself), so it slows down with them: under
qemu's emulator (tests/vm), on a loaded box, on a slow disk. It is clamped to at least 1, so a
fast machine keeps the bounds as written. A binary built with the sanitizers runs about twice as
slowly again, which process start-up does not show, so that doubles it.

  CLOWDY_TEST_SLOWDOWN=N      use N, measure nothing (to reproduce a run, or to show a test
                              does not depend on speed: the bounds only get wider)
  CLOWDY_TEST_SLOWDOWN_MIN=N  measure, but use at least N (tests/vm/inside: the emulator)

No test asserts how long something took: what a user would notice (how many calls overlapped,
what order things happened in) it asserts directly, whatever the speed.
"""
import functools
import os
import statistics
import subprocess
import sys
import time

# One sample on an unloaded 2-core cloud machine: about 60 ms for the interpreter's start and 3-4 ms
# per fork/exec of /bin/true.
REFERENCE_SECONDS = 0.100


def _sample():
    """Seconds for one interpreter start and ten fork/execs."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    for _ in range(10):
        subprocess.run(["/bin/true"], check=True)
    return time.perf_counter() - started


def _sanitized(binary):
    """Whether binary was built with AddressSanitizer (its runtime's symbols are in the file)."""
    try:
        with open(binary, "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


@functools.lru_cache(maxsize=None)
def factor(binary=None):
    """The slowdown factor (at least 1) for tests of binary: forced, or measured and doubled for a
    sanitizer build."""
    forced = os.environ.get("CLOWDY_TEST_SLOWDOWN")
    if forced:
        return max(1.0, float(forced))
    measured = statistics.median(_sample() for _ in range(5)) / REFERENCE_SECONDS
    measured = max(1.0, measured, float(os.environ.get("CLOWDY_TEST_SLOWDOWN_MIN", "1")))
    if binary and _sanitized(binary):
        measured *= 2
    return round(measured, 2)
