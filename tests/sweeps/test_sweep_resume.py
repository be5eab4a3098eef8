"""Resume: n_trials is the study's total, job folders are never overwritten, the MLflow parent is found again, and a
trial left RUNNING by a sweep that was SIGKILLed mid-trial is marked FAIL (and counted) by the next sweep.

One scenario, three sweeps on one study:
  1. n_trials=2                      -> trials 0, 1 COMPLETE
  2. n_trials=4                      -> trial 2 starts; the sweep's process group is SIGKILLed mid-trial
  3. n_trials=4 (command 1 again)    -> trial 2 marked FAIL, trial 3 runs, the study holds 4 trials
"""
import time

import pytest
import yaml
from optuna.trial import TrialState

from tests.helpers import kill_group, wait_for
from sweeplab.names import FAIL_REASON_ATTR, PARENT_TAG, RUN_ID_ATTR, STATE_TAG
from tests.helpers import job_link

pytestmark = pytest.mark.slow

# Enough epochs that trial 2 is caught training (its seeded batch size of 16 trains digits for ~4 s; 30 epochs left
# a window of ~1 s that a loaded machine missed); the same in every step: more epochs would be another question.
STUDY = ["hydra.sweeper.study_name=resume-test", "epochs=100"]


def snapshot(folder) -> dict:
    return {p.relative_to(folder): (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


def running_trial_with_run(space, number: int):
    if not space.journal.exists():
        return None
    trials = space.study("resume-test").trials
    if len(trials) <= number:
        return None
    trial = trials[number]
    if trial.state == TrialState.RUNNING and RUN_ID_ATTR in trial.user_attrs and trial.intermediate_values:
        return trial
    return None


@pytest.fixture(scope="module")
def resumed(new_sweep):
    space = new_sweep("resume")
    code, _, err = space.run(*STUDY, "hydra.sweeper.n_trials=2")
    assert code == 0, err[-3000:]
    first = {
        "trials": [(t.number, t.state, t.params) for t in space.study("resume-test").trials],
        "dirs": {d.name: snapshot(d) for d in space.job_dirs()},
        "parents": [r.info.run_id for r in space.parents()],
    }
    time.sleep(0.05)  # mtimes of anything rewritten later must differ

    process = space.start(*STUDY, "hydra.sweeper.n_trials=4")
    try:
        killed = wait_for(lambda: running_trial_with_run(space, 2), timeout=240, interval=0.1, what="trial 2 to train",
                          process=process)
    except AssertionError as caught:
        raise AssertionError(f"{caught}\n{(space.root / 'started-sweep.log').read_text()[-3000:]}") from None
    finally:
        kill_group(process)
    assert killed.number == 2
    assert space.study("resume-test").trials[2].state == TrialState.RUNNING  # nobody told the study

    code, out, err = space.run(*STUDY, "hydra.sweeper.n_trials=4")
    assert code == 0, err[-3000:]
    return space, first, killed, out


def test_resume_counts_toward_the_total(resumed):
    space, first, _, _ = resumed
    assert [(number, state) for number, state, _ in first["trials"]] == [(0, TrialState.COMPLETE),
                                                                         (1, TrialState.COMPLETE)]
    study = space.study("resume-test")
    assert [t.number for t in study.trials] == [0, 1, 2, 3]
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL,
                                               TrialState.COMPLETE]
    assert [(t.number, t.state, t.params) for t in study.trials[:2]] == first["trials"]  # untouched


def test_job_dirs_are_never_overwritten(resumed):
    space, first, _, _ = resumed
    dirs = space.job_dirs()
    assert [d.name for d in dirs] == ["0", "1", "2", "3"]
    for folder in dirs:
        assert (folder / ".hydra" / "config.yaml").is_file()
    for name in ("0", "1"):
        assert snapshot(space.dir / name) == first["dirs"][name], f"job dir {name} was rewritten"
    # the killed trial's folder still holds its own config and link, and trial 3 its own
    trials = space.study("resume-test").trials
    for number in (2, 3):
        config = yaml.safe_load((space.dir / str(number) / ".hydra" / "config.yaml").read_text())
        assert config["batch_size"] == trials[number].params["batch_size"]
        assert job_link(space.dir / str(number))["trial_id"] == trials[number]._trial_id


def test_one_parent_and_a_child_per_trial_after_resume(resumed):
    space, first, _, _ = resumed
    parents = space.parents()
    assert [p.info.run_id for p in parents] == first["parents"]  # found again, not duplicated
    (parent,) = parents
    assert parent.info.status == "FINISHED"
    children = space.child_by_trial(parent.info.run_id)
    assert sorted(children) == [0, 1, 2, 3]
    assert len(space.runs()) == 5
    assert parent.data.metrics["trials_complete"] == 3 and parent.data.metrics["trials_fail"] == 1


def test_trial_of_a_killed_sweep_is_failed_on_resume(resumed):
    space, _, killed, out = resumed
    trial = space.study("resume-test").trials[2]
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs.get(FAIL_REASON_ATTR), trial.user_attrs
    (parent,) = space.parents()
    child = space.client().get_run(killed.user_attrs[RUN_ID_ATTR])
    assert child.data.tags[PARENT_TAG] == parent.info.run_id
    assert child.info.status == "FAILED"  # not left RUNNING forever
    assert child.data.tags[STATE_TAG] == "FAIL"
    assert "1 failed" in out  # the summary counts it
