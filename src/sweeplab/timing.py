"""Where a trial's time goes (bench/trial_overhead.py reads it): named sections timed with time.perf_counter, and one
JSON line per job or trial appended to the file that the environment variable SWEEPLAB_TIMINGS names.

Without that variable a section costs two clock readings and nothing is written. Sections add up in this
process until ``write`` hands them out, so one slot at a time is timed correctly (the bench runs one).
"""
import json
import os
import time
from collections import defaultdict
from contextlib import contextmanager

TIMINGS_ENV = "SWEEPLAB_TIMINGS"
_seconds: dict[str, float] = defaultdict(float)


@contextmanager
def section(name: str):
    """Wall seconds under ``name``, and the process's CPU seconds under ``cpu.<name>`` (steadier on a busy machine)."""
    started, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        _seconds[name] += time.perf_counter() - started
        _seconds[f"cpu.{name}"] += time.process_time() - cpu


def add(name: str, seconds: float) -> None:
    _seconds[name] += seconds


def write(key: str) -> None:
    """Append the sections timed since the last write as {"key": key, name: seconds, ...}, and start afresh."""
    path = os.environ.get(TIMINGS_ENV)
    if path and _seconds:
        with open(path, "a") as out:
            out.write(json.dumps({"key": key, **_seconds}) + "\n")
    _seconds.clear()
