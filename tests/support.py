"""Helpers for tests that wait on real processes and sockets."""

import time


def wait_until(condition, timeout: float = 10.0, interval: float = 0.02):
    """Poll condition() until it returns something truthy; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
