"""Pruning: each epoch's validation accuracy reaches the trial, the median pruner stops trials with a hopeless
learning rate at once, they end PRUNED in Optuna and KILLED (tag sweeplab.state=PRUNED) in MLflow, and the sweep
trains fewer epochs than it would without the pruner.

A 2×3 grid: Adam at lr=1e-2 reaches ~90 % on digits after one epoch, at lr=1e-5 it stays near chance (~10 %).
Once one good trial has completed, the median of completed trials is far above any lr=1e-5 trial, so each later
lr=1e-5 trial is pruned after its first epoch. (With n_startup_trials=1 the median pruner is strict: a good trial
that trails the best one at some epoch may be pruned too, which is the pruner's documented behaviour.)
"""
import pytest
from optuna.trial import TrialState

from sweeplab.names import STATE_TAG

pytestmark = pytest.mark.slow

EPOCHS = 3
GOOD_LR, BAD_LR = 0.01, 0.00001


@pytest.fixture(scope="module")
def pruned(new_sweep):
    space = new_sweep("pruning")
    code, out, err = space.run(
        "hydra.sweeper.params=null", "hydra/sweeper/sampler=grid", f"optimizer.lr=choice({GOOD_LR},{BAD_LR})",
        "batch_size=choice(16,32,64)", f"epochs={EPOCHS}", "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=1", "hydra.sweeper.pruner.n_warmup_steps=0",
    )
    assert code == 0, err[-3000:]
    return space, out


def test_hopeless_trials_are_pruned(pruned):
    space, out = pruned
    study = space.study()
    assert len(study.trials) == 6
    states = [t.state for t in study.trials]
    assert TrialState.FAIL not in states and TrialState.RUNNING not in states
    good_done = False
    for trial in study.trials:  # in the order they ran
        if trial.state == TrialState.PRUNED:
            assert len(trial.intermediate_values) < EPOCHS  # stopped at once
        else:
            assert list(trial.intermediate_values) == list(range(1, EPOCHS + 1))  # every epoch reported
        if trial.params["optimizer.lr"] == BAD_LR and good_done:
            assert trial.state == TrialState.PRUNED and list(trial.intermediate_values) == [1], trial
        good_done |= trial.state == TrialState.COMPLETE and trial.params["optimizer.lr"] == GOOD_LR
    assert good_done and study.best_trial.params["optimizer.lr"] == GOOD_LR
    assert sum(t.params["optimizer.lr"] == BAD_LR and t.state == TrialState.PRUNED for t in study.trials) >= 1
    assert f"{states.count(TrialState.PRUNED)} pruned" in out


def test_pruning_saves_epochs(pruned):
    space, _ = pruned
    study = space.study()
    trained = sum(len(t.intermediate_values) for t in study.trials)
    assert trained < len(study.trials) * EPOCHS
    (parent,) = space.parents()
    assert parent.data.metrics["epochs_trained"] == trained
    assert parent.data.metrics["trials_pruned"] == sum(t.state == TrialState.PRUNED for t in study.trials)


def test_pruned_children_end_killed(pruned):
    space, _ = pruned
    study = space.study()
    (parent,) = space.parents()
    children = space.child_by_trial(parent.info.run_id)
    assert sorted(children) == [t.number for t in study.trials]
    for trial in study.trials:
        child = children[trial.number]
        if trial.state == TrialState.PRUNED:
            assert child.info.status == "KILLED"
            assert child.data.tags[STATE_TAG] == "PRUNED"
            assert child.data.metrics["epochs_trained"] == len(trial.intermediate_values)
        else:
            assert child.info.status == "FINISHED" and child.data.tags[STATE_TAG] == "COMPLETE"
    assert parent.data.params["pruner"] == "optuna.pruners.MedianPruner"
