"""Failure policy: a NaN trial and a raising trial end FAIL in Optuna and FAILED in MLflow with their reasons and the
sweep goes on; max_failure_rate decides when it stops; a sweep where every trial failed ends in one `error:` line,
exit code 1, and no traceback.

The failing values pass the sweeper's checks before the first trial (they are valid settings) and fail only when a
trial runs: SGD at lr=1e30 makes the loss NaN in the first epoch (NonFiniteLoss); val_size=5000 is more than the
digits training split holds (1437 images), which the job finds when it loads the data.
"""
import pytest
from optuna.trial import TrialState

from tests.helpers import one_error_line
from sweeplab.names import END_REASON_TAG, FAIL_REASON_ATTR, STATE_TAG

pytestmark = pytest.mark.slow

ONLY = ["hydra.sweeper.params=null"]  # the search space is just what the test names


@pytest.fixture(scope="module")
def mixed(new_sweep):
    """A 2×2 grid: one good trial, one NaN trial, two trials the data loader rejects."""
    space = new_sweep("mixed-failures")
    code, out, err = space.run(
        *ONLY, "hydra/sweeper/sampler=grid", "optimizer=sgd", "optimizer.lr=choice(0.01,1e30)",
        "val_size=choice(300,5000)", "hydra.sweeper.max_failure_rate=0.9",
    )
    return space, code, out, err


def trial_kind(trial) -> str:
    if trial.params["val_size"] == 5000:
        return "raises"
    return "nan" if trial.params["optimizer.lr"] > 1 else "good"


def test_failed_trials_do_not_stop_the_sweep(mixed):
    space, code, out, err = mixed
    assert code == 0, err[-3000:]
    assert "Traceback" not in err
    study = space.study()
    assert len(study.trials) == 4
    states = {trial_kind(t): t.state for t in study.trials}
    assert sorted(trial_kind(t) for t in study.trials) == ["good", "nan", "raises", "raises"]
    assert states == {"good": TrialState.COMPLETE, "nan": TrialState.FAIL, "raises": TrialState.FAIL}
    assert study.best_trial.params == {"optimizer.lr": 0.01, "val_size": 300}
    assert "3 failed" in out


def test_fail_reasons_are_recorded(mixed):
    space = mixed[0]
    for trial in space.study().trials:
        reason = trial.user_attrs.get(FAIL_REASON_ATTR)
        kind = trial_kind(trial)
        if kind == "good":
            assert reason is None
        elif kind == "nan":
            assert reason.startswith("NonFiniteLoss") and "nan" in reason, reason
        else:
            assert "val_size" in reason and "5000" in reason, reason


def test_failed_trials_are_failed_child_runs(mixed):
    space = mixed[0]
    study = space.study()
    (parent,) = space.parents()
    children = space.child_by_trial(parent.info.run_id)
    assert sorted(children) == [t.number for t in study.trials]  # a child even for a trial that died early
    for trial in study.trials:
        child = children[trial.number]
        if trial.state == TrialState.FAIL:
            assert child.info.status == "FAILED"
            assert child.data.tags[STATE_TAG] == "FAIL"
            assert child.data.tags["optuna.study"] == study.study_name
            assert trial.user_attrs[FAIL_REASON_ATTR] in child.data.tags[END_REASON_TAG]
        else:
            assert child.info.status == "FINISHED" and child.data.tags[STATE_TAG] == "COMPLETE"
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_fail"] == 3 and parent.data.metrics["trials_complete"] == 1


def test_every_trial_failing_exits_1_in_one_line(new_sweep):
    space = new_sweep("all-nan")
    code, out, err = space.run(
        *ONLY, "optimizer=sgd", "optimizer.lr=choice(1e30,1e31)", "hydra.sweeper.n_trials=2",
        "hydra.sweeper.max_failure_rate=1.0",
    )
    assert code == 1, err[-3000:]
    line = one_error_line(err)
    assert "no trial" in line and "NonFiniteLoss" in line, line
    study = space.study()
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2
    (parent,) = space.parents()
    assert [c.info.status for c in space.children(parent.info.run_id)] == ["FAILED"] * 2


def test_max_failure_rate_stops_the_sweep(new_sweep):
    space = new_sweep("too-many-failures")
    code, out, err = space.run(
        *ONLY, "val_size=choice(5000,6000,7000)", "hydra.sweeper.n_trials=4", "hydra.sweeper.max_failure_rate=0.25",
    )
    assert code == 1, err[-3000:]
    line = one_error_line(err)
    assert "max_failure_rate" in line, line
    study = space.study()
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 2  # stopped once 2 > 0.25 × 4, not after 4
    assert len(space.job_dirs()) == 2
