"""Bad sweep input fails before the first trial, in one line, with a non-zero exit: no sweep folder (so no job
folder and no study journal), no MLflow run.

These sweeps never train, so they run in this process (`train.py`'s main with a patched argv): a subprocess would
spend most of its time importing torch and MLflow.
"""
import logging
import sys

import pytest
from hydra.core.global_hydra import GlobalHydra

from sweeplab import cli

pytestmark = pytest.mark.timeout(300)


def sweep_in_process(space, capfd, *extra: str) -> tuple[int, str, str]:
    argv = sys.argv
    sys.argv = space.argv(*extra)
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in list(logging.root.manager.loggerDict))]
    saved = {lg: (lg.level, lg.handlers[:], lg.propagate, lg.disabled) for lg in loggers}
    code = 0
    try:
        cli.main()
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.argv = argv
        GlobalHydra.instance().clear()
        # Hydra configured logging for this process: undo it, so later tests see the logging they started with.
        for lg, (level, handlers, propagate, disabled) in saved.items():
            for handler in set(lg.handlers) - set(handlers):
                handler.close()
            lg.setLevel(level)
            lg.handlers[:] = handlers
            lg.propagate, lg.disabled = propagate, disabled
    out, err = capfd.readouterr()
    return code, out, err


def assert_nothing_ran(space) -> None:
    assert not space.dir.exists(), "the sweep folder (job folders, the study's journal) was left behind"
    assert space.runs() == [], "an MLflow run was created"


def assert_one_line(code: int, err: str, *words: str) -> str:
    assert code == 2, (code, err)
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["hydra.sweeper.params=null"], ["search space is empty"]),
        (["hydra.sweeper.params.batch_size='choice('"], ["invalid search space", "choice("]),
        (["batch_size=range(64,64)"], ["invalid search space", "at least one value"]),
        (["nosuchkey=choice(1,2)"], ["nosuchkey"]),
        (["optimizer.nosuchkey=interval(0,1)"], ["optimizer.nosuchkey"]),
        (["hydra.sweeper.n_trials=0"], ["n_trials"]),
        (["hydra.sweeper.n_jobs=0"], ["n_jobs"]),
        (["hydra.sweeper.population=0"], ["hydra.sweeper.population", ">= 1"]),
        (["hydra.sweeper.population=2", "hydra.sweeper.population_reserve=-1"], ["population_reserve", ">= 0"]),
        (["hydra.sweeper.population_reserve=2"], ["population_reserve=2", "hydra.sweeper.population to 2"]),
        (["hydra.sweeper.storage=notaurl"], ["notaurl"]),
        (["hydra.sweeper.storage=nosuchdb://x/y"], ["storage"]),
        (["batch_size=choice(0,64)"], ["batch_size", "0"]),
        (["optimizer.lr=interval(0,0.1)"], ["optimizer.lr"]),
        (["hydra/sweeper/sampler=grid"], ["sampler", "discrete"]),  # the default lr range is continuous
        (["hydra.sweeper.max_failure_rate=2"], ["max_failure_rate"]),
        (["hydra.sweeper.custom_search_space=tests.sweeps.nosuch.space"], ["custom_search_space", "nosuch"]),
        (["dataset=mnist", "download=false", "data_dir=/nonexistent/sweeplab-data"], ["MNIST not found", "download=false"]),
        (["~dataset.val_size"], ["dataset config 'digits' sets no val_size", "val_size="]),  # issue 19
        (["+optimizer.betas=0.9"], ["optimizer.betas=0.9", "(0.9, 0.999)"]),
        (["hydra.sweeper.warm_start=nosuch"], ["warm_start=nosuch", "no study 'nosuch'"]),
    ],
    ids=["empty-space", "bad-grammar-in-params", "bad-sweep-arguments", "unknown-key", "unknown-nested-key", "n_trials-0", "n_jobs-0",
         "population-0", "population_reserve-negative", "population_reserve-without-population",
         "storage-not-a-url", "storage-unknown-dialect", "invalid-choice", "invalid-interval", "grid-over-continuous-space",
         "max_failure_rate-2", "custom-space-not-importable", "dataset-missing", "dataset-without-val_size",
         "scalar-for-a-pair", "warm-start-from-no-study"],
)
def test_bad_sweep_input_fails_before_the_first_trial(new_sweep, capfd, overrides, words):
    space = new_sweep("bad-input")
    code, _, err = sweep_in_process(space, capfd, "hydra.sweeper.n_trials=1", *overrides)
    assert_one_line(code, err, *words)
    assert_nothing_ran(space)


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["hydra/sweeper/pruner=nope"], ["hydra/sweeper/pruner=nope", "hyperband", "median"]),
        (["hydra/sweeper/sampler=nope"], ["hydra/sweeper/sampler=nope", "tpe", "random"]),
        (["hydra/launcher=nope"], ["hydra/launcher=nope", "joblib"]),
        (["batch_size=choice("], ["batch_size=choice(", "override_grammar"]),
        (["hydra.sweeper.n_trial=6"], ["hydra.sweeper.n_trial", "did you mean hydra.sweeper.n_trials=6?"]),
    ],
    ids=["unknown-pruner", "unknown-sampler", "unknown-launcher", "bad-grammar-on-command-line", "misspelt-sweeper-key"],
)
def test_input_hydra_would_reject_fails_in_one_line(new_sweep, capfd, overrides, words):
    """Checked before Hydra composes the config (which would print its multi-line report): one line, the choices."""
    space = new_sweep("bad-name")
    code, _, err = sweep_in_process(space, capfd, "hydra.sweeper.n_trials=1", *overrides)
    assert_one_line(code, err, *words)
    assert_nothing_ran(space)
