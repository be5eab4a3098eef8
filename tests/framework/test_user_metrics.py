"""Issue 21, item 1: "plus any metric a user's job logs" — the user's own metrics (torchmetrics, or a class or
function of their own module) computed on validation every epoch and on test at the end, logged beside sweeplab's,
and usable as objectives and constraints; bad ones are one line before any work."""
import pytest

from sweeplab.job import run_job
from tests.sweeps.test_sweep_bad_input import assert_one_line, sweep_in_process

USER = "tests.framework.user_metrics"
F1 = "+metrics.macro_f1={_target_: torchmetrics.classification.MulticlassF1Score, num_classes: 10, average: macro}"
MINE = f"+metrics.mine={{_target_: {USER}.Accuracy}}"
ERRORS = f"+metrics.errors={{_target_: {USER}.error_rate, percent: true}}"


def history(client, run, name: str) -> list[float]:
    return [m.value for m in sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)]


def test_a_job_logs_user_metrics_every_epoch_and_optimises_one(workspace):
    out = workspace.root / "job"
    out.mkdir()
    value = run_job(workspace.compose(F1, MINE, ERRORS, "objective.metric=val_macro_f1", "epochs=3"), out)
    (run,) = workspace.runs()
    client, metrics = workspace.client(), run.data.metrics
    f1, accuracy = history(client, run, "val_macro_f1"), history(client, run, "val_accuracy")
    assert len(f1) == 3 and 0 < value <= 1
    assert value == max(f1) == metrics["best_val_macro_f1"]  # the best epoch is chosen by the user's metric
    assert metrics["best_epoch"] == f1.index(value) + 1
    # The hand-written class and function see the same outputs and labels as sweeplab's own accuracy.
    assert history(client, run, "val_mine") == pytest.approx(accuracy)
    assert history(client, run, "val_errors") == pytest.approx([100 * (1 - a) for a in accuracy], abs=1e-4)
    assert metrics["test_mine"] == pytest.approx(metrics["test_accuracy"])
    assert metrics["test_errors"] == pytest.approx(100 * (1 - metrics["test_accuracy"]), abs=1e-4)
    assert 0 < metrics["test_macro_f1"] <= 1


class _Job:
    """A single job's command line in the workspace, for sweep_in_process (which runs cli.main in this process)."""

    def __init__(self, workspace):
        self.workspace = workspace

    def argv(self, *extra: str) -> list[str]:
        return ["train.py", *self.workspace.overrides(*extra)]


# case -> (overrides, words the one line must contain)
BAD = {
    "objective not declared": (("objective.metric=val_f1",), ("objective.metric=val_f1", "+metrics.<name>=")),
    "constraint not declared": (('objective.constraints=["val_f1>=0.5"]',), ("objective.constraints=val_f1",)),
    "target does not import": (("+metrics.f1={_target_: torchmetrics.NoSuchScore}",),
                               ("metrics.f1._target_=torchmetrics.NoSuchScore cannot be imported",)),
    "constructor rejects its settings": ((F1.replace("average: macro", "average: most"),),
                                         ("metrics.macro_f1", "rejected its settings")),
    "not the protocol": ((f"+metrics.odd={{_target_: {USER}.NoReset}}",), ("metrics.odd", "without reset()")),
    "a built-in's name": ((f"+metrics.accuracy={{_target_: {USER}.Accuracy}}",), ("metrics.accuracy", "identifier")),
    "not one number": ((f"+metrics.share={{_target_: {USER}.PerClassShare}}", "objective.metric=val_share"),
                       ("metrics.share: compute() gave a tensor of shape (10,), not one number",)),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_user_metric_is_one_line_before_any_work(workspace, capfd, case):
    overrides, words = BAD[case]
    code, _, err = sweep_in_process(_Job(workspace), capfd, *overrides)
    assert_one_line(code, err, *words)
    assert not workspace.out.exists()
    assert workspace.runs() == []


def test_a_metric_failing_in_training_fails_the_job_in_one_line(workspace, capfd):
    code, _, err = sweep_in_process(_Job(workspace), capfd, f"+metrics.late={{_target_: {USER}.FailsAfterTheProbe}}",
                                    "epochs=1")
    assert_one_line(code, err, "metrics.late: compute() raised ValueError: more than 64 outputs")
    (run,) = workspace.runs()
    assert run.info.status == "FAILED"  # not left RUNNING
