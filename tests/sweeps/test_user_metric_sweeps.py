"""Issue 21, item 1: a user's own metric as a sweep's objective or constraint — alone, beside a cost, and in
populations (each stacked member's metric computed on its own outputs) — and the bad ones in one line."""
import pytest
from optuna.trial import TrialState

from sweeplab.names import FAIL_REASON_ATTR
from tests.framework.test_user_metrics import ERRORS, F1, MINE, USER, history
from tests.helpers import one_error_line
from tests.sweeps.test_population import populations
from tests.sweeps.test_sweep_bad_input import assert_nothing_ran, assert_one_line, sweep_in_process

LR_ONLY = ("hydra.sweeper.params=null", "optimizer.lr=tag(log, interval(1e-3, 1e-1))")


@pytest.mark.slow
def test_a_population_sweep_optimises_a_user_metric_per_member(new_sweep):
    space = new_sweep("user-metric-population")
    code, out, err = space.run(F1, MINE, ERRORS, *LR_ONLY, "objective.metric=val_macro_f1",
                             'objective.constraints=["val_errors<=95"]', "hydra.sweeper.population=3",
                             "hydra.sweeper.n_trials=3", "hydra/sweeper/sampler=random")
    assert code == 0, err[-3000:]
    assert ": 3 members, " in out + err and "cannot be stacked" not in out + err  # trained as one stacked model
    study = space.study()
    assert study.metric_names == ["val_macro_f1"]
    assert [len(p) for p in populations(space)] == [3]  # the three trials trained as one stack
    (parent,) = space.parents()
    client, children = space.client(), space.child_by_trial(parent.info.run_id)
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        run = children[trial.number]
        f1 = history(client, run, "val_macro_f1")
        assert len(f1) == 2 and trial.value == max(f1) == run.data.metrics["best_val_macro_f1"]
        # each member's own outputs: its hand-written accuracy follows its own val_accuracy
        assert history(client, run, "val_mine") == pytest.approx(history(client, run, "val_accuracy"))
        best = run.data.metrics["best_epoch"]
        errors = history(client, run, "val_errors")[int(best) - 1]
        assert trial.constraints["val_errors<=95"] == pytest.approx(errors - 95)
        assert trial.user_attrs["test_macro_f1"] == run.data.metrics["test_macro_f1"]
    assert len({t.value for t in study.trials}) == 3  # three learning rates, three members' own values


@pytest.mark.slow
def test_a_user_metric_beside_a_cost_makes_a_two_objective_study(new_sweep):
    space = new_sweep("user-metric-two")
    code, _, err = space.run(F1, *LR_ONLY, "objective.metrics=[val_macro_f1,train_time_s]",
                             "objective.directions=[maximize,minimize]", "hydra.sweeper.n_trials=2", "epochs=1")
    assert code == 0, err[-3000:]
    study = space.study()
    assert study.metric_names == ["val_macro_f1", "train_time_s"]
    (parent,) = space.parents()
    children = space.child_by_trial(parent.info.run_id)
    for trial in study.trials:
        metrics = children[trial.number].data.metrics
        assert trial.values == [metrics["best_val_macro_f1"], metrics["train_time_s"]]
        assert metrics["best_val_macro_f1"] == metrics["val_macro_f1"]  # one epoch


@pytest.mark.parametrize("overrides, words", [
    (("objective.metric=val_f1",), ("objective.metric=val_f1", "+metrics.<name>=")),
    ((F1, "objective.metrics=[val_accuracy,val_f1]", "objective.directions=[maximize,maximize]"),
     ("objective.metric=val_f1", "val_macro_f1")),
    ((F1.replace("average: macro", "average: most"), "objective.metric=val_macro_f1"),
     ("metrics.macro_f1", "rejected its settings")),
])
def test_a_sweep_over_a_bad_user_metric_is_one_line_before_the_first_trial(new_sweep, capfd, overrides, words):
    space = new_sweep("bad-user-metric")
    code, _, err = sweep_in_process(space, capfd, *overrides)
    assert_one_line(code, err, *words)
    assert_nothing_ran(space)


def test_a_metric_that_is_not_one_number_fails_its_trial_in_one_line(new_sweep, capfd):
    space = new_sweep("user-metric-not-a-number")
    code, _, err = sweep_in_process(space, capfd, f"+metrics.share={{_target_: {USER}.PerClassShare}}",
                                    "hydra.sweeper.n_trials=1", "hydra.sweeper.max_failure_rate=1.0")
    assert code == 1
    assert "compute() gave a tensor of shape (10,), not one number" in one_error_line(err)
    (trial,) = space.study().trials
    assert trial.state == TrialState.FAIL and "metrics.share" in trial.user_attrs[FAIL_REASON_ATTR]
    assert space.runs() and not any(run.info.status == "RUNNING" for run in space.runs())
