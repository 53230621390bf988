"""Process and polling helpers shared by the tests that start their own
peers (labs; network namespaces in tests/publish, tests/scan) and by the
bench cases that reuse them."""

import contextlib
import signal
import subprocess
import time

POLL = 0.1


def run(*argv, check=True, **kwargs):
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=60, **kwargs)


def wait_for(check, seconds, what):
    """Poll `check` until it returns something truthy (returned), or fail
    naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        outcome = check()
        if outcome:
            return outcome
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(POLL)


def stop_process(process, sig=signal.SIGTERM, seconds=10):
    """Stop a child (SIGTERM, then SIGKILL after `seconds`) and reap it."""
    if process is not None and process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def running_lab(directory, **up_options):
    """infrapower.lab.up(directory, **up_options), brought down afterwards,
    and also when it fails half-way up (no simulator left running)."""
    from infrapower import lab as lab_module

    try:
        running = lab_module.up(directory, **up_options)
    except BaseException:
        lab_module.down(directory)
        raise
    try:
        yield running
    finally:
        lab_module.down(directory)
