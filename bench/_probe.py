"""Run `train.py` unchanged, with timestamps around the job's phases (used by bench/startup.py).

Usage: python [-X importtime] bench/_probe.py OUT.json path/to/train.py [overrides...]

Time is attributed to the innermost active phase, and every import that happens inside a phase is
counted separately as that phase's import time (by wrapping importlib's ``_find_and_load``), so the
phases add up to the measured wall time without double counting.
"""
import atexit
import importlib.abc
import importlib.util
import json
import runpy
import sys
import time
from pathlib import Path

T_START = time.time()


class Clock:
    def __init__(self):
        self.work: dict[str, float] = {}
        self.imports: dict[str, float] = {}
        self.stack: list[str] = ["start-up: Hydra (import, compose, logging, output dir)"]
        self.since = time.perf_counter()
        self.import_depth = 0
        self.import_since = 0.0

    def _charge(self, now: float) -> None:
        phase = self.stack[-1]
        bucket = self.imports if self.import_depth else self.work
        bucket[phase] = bucket.get(phase, 0.0) + now - self.since
        self.since = now

    def enter(self, phase: str) -> None:
        self._charge(time.perf_counter())
        self.stack.append(phase)

    def leave(self) -> None:
        self._charge(time.perf_counter())
        self.stack.pop()

    def phase(self, name: str, fn, unless_inside: str | None = None):
        def wrapper(*args, **kwargs):
            if unless_inside and unless_inside in self.stack:
                return fn(*args, **kwargs)
            self.enter(name)
            try:
                return fn(*args, **kwargs)
            finally:
                self.leave()

        return wrapper

    def watch_imports(self) -> None:
        bootstrap = sys.modules["_frozen_importlib"]
        original = bootstrap._find_and_load

        def _find_and_load(name, import_):
            if self.import_depth == 0:
                self._charge(time.perf_counter())
            self.import_depth += 1
            try:
                return original(name, import_)
            finally:
                if self.import_depth == 1:
                    self._charge(time.perf_counter())
                self.import_depth -= 1

        bootstrap._find_and_load = _find_and_load


CLOCK = Clock()
CLOCK.watch_imports()
TRAINING = "training (epochs incl. validation)"
PER_EPOCH = "tracking: per-epoch metrics"
FINISH = "tracking: final metrics, artifacts, status"


def instrument_job() -> None:
    from sweeplab import job, run_log, tracking

    tracking.connect = CLOCK.phase("tracking: connect (store init / schema check)", tracking.connect)
    job.load_data = CLOCK.phase("data: load + split", job.load_data)
    job.build_model = CLOCK.phase("setup: model", job.build_model)
    job._start_run = CLOCK.phase("tracking: experiment + start run (params, tags, config)", job._start_run)
    job.evaluate = CLOCK.phase("final: test evaluation", job.evaluate)
    for name in ("metrics", "tags", "artifact", "end"):
        setattr(run_log.RunLog, name, CLOCK.phase(FINISH, getattr(run_log.RunLog, name), unless_inside=PER_EPOCH))
    fit = job.fit

    def timed_fit(*args, on_epoch=lambda metrics: None, **kwargs):
        return fit(*args, on_epoch=CLOCK.phase(PER_EPOCH, on_epoch), **kwargs)

    job.fit = CLOCK.phase(TRAINING, timed_fit)


class PatchOnImport(importlib.abc.MetaPathFinder):
    """Patch sweeplab.cli when train.py imports it, so that train.py runs exactly as it would on its own."""

    def __init__(self, patch):
        self.patch = patch

    def find_spec(self, name, path, target=None):
        if name != "sweeplab.cli":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            self.patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


def patch_cli(cli) -> None:
    task = cli.task

    def timed_task(cfg):
        CLOCK.enter("start-up: import sweeplab.job")
        instrument_job()
        CLOCK.leave()
        CLOCK.enter("job: other (settings, optimizer, saving weights)")
        try:
            return task(cfg)
        finally:
            CLOCK.leave()
            CLOCK.enter("exit: Hydra wrap-up")

    cli.task = timed_task


def main() -> None:
    out = Path(sys.argv[1])
    sys.argv = sys.argv[2:]

    def write_out():  # registered first, so it runs after every other atexit handler
        CLOCK._charge(time.perf_counter())
        out.write_text(json.dumps({"t_start": T_START, "t_end": time.time(), "work": CLOCK.work,
                                   "imports": CLOCK.imports}))

    atexit.register(write_out)
    sys.meta_path.insert(0, PatchOnImport(patch_cli))
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    finally:
        CLOCK.enter("exit: atexit handlers (MLflow, logging, ...)")


if __name__ == "__main__":
    main()
