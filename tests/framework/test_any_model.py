"""Issue 9: any model, loss and objective from config — a user's own classes through the doors sweeplab's use."""
import pytest
import torch

from sweeplab.job import WEIGHTS_FILE, run_job

USER = "tests.framework.user_models"
LOGITS = (f"model._target_={USER}.TinyLogitsNet", "~model.width", "loss=cross_entropy")


def test_a_users_logits_model_trains_with_cross_entropy_and_label_smoothing(workspace):
    out = workspace.root / "job"
    out.mkdir()
    accuracy = run_job(workspace.compose(*LOGITS, "loss.label_smoothing=0.1", "epochs=5", "optimizer.lr=0.01"), out)
    assert accuracy > 0.6  # digits: chance is 0.1
    (run,) = workspace.runs()
    assert run.data.params["loss._target_"] == "torch.nn.CrossEntropyLoss"
    assert run.data.metrics["best_val_accuracy"] == accuracy
    assert torch.load(out / WEIGHTS_FILE, weights_only=True)["input_shape"] == [1, 8, 8]


def test_a_model_is_given_only_the_facts_its_constructor_names(workspace):
    from sweeplab.building import build_model

    facts = {"input_shape": (1, 8, 8), "in_features": 64, "in_channels": 1, "num_classes": 10}
    asks = build_model(workspace.compose(*LOGITS).model, facts)
    assert asks.seen_shape == (1, 8, 8) and asks.net[-1].out_features == 10
    cfg = workspace.compose(f"model._target_={USER}.NoFactsNet", "~model.width")
    assert build_model(cfg.model, facts)(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_objective_val_loss_minimised_returns_the_lowest_epoch(workspace):
    out = workspace.root / "job"
    out.mkdir()
    value = run_job(workspace.compose("objective.metric=val_loss", "objective.direction=minimize", "epochs=4"), out)
    (run,) = workspace.runs()
    history = [m.value for m in workspace.client().get_metric_history(run.info.run_id, "val_loss")]
    assert value == min(history) and run.data.metrics["best_val_loss"] == value


# case -> (overrides, what the one line must contain)
BAD = {
    "target does not import": ([f"model._target_={USER}.Nope", "~model.width"], f"model._target_={USER}.Nope"),
    "constructor rejects its settings": ([*LOGITS, "+model.hidden=-1"], "rejected its settings"),
    "key the constructor does not take": ([*LOGITS, "+model.depth=3"], "model.depth is not a parameter"),
    "output does not match the classes": ([f"model._target_={USER}.WrongClassesNet", "~model.width"], "(2, 10)"),
    "logits under nll": ([f"model._target_={USER}.TinyLogitsNet", "~model.width"], "loss=cross_entropy"),
    "unknown loss": (["loss=hinge"], "loss=hinge does not exist"),
    "loss target does not import": (["loss._target_=torch.nn.HingeLos"], "loss._target_=torch.nn.HingeLos"),
    "unknown objective metric": (["objective.metric=val_f1"], "objective.metric=val_f1"),
    "unknown direction": (["objective.direction=up"], "objective.direction"),
    "momentum on Adam": (["+optimizer.momentum=0.9"], "optimizer.momentum is not a parameter of torch.optim.Adam"),
    "key that does not exist": (["epoch=3"], "did you mean epochs=3"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_model_loss_or_objective_is_one_line_before_training(workspace, case):
    overrides, needle = BAD[case]
    result = workspace.train(*overrides)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr
    assert not workspace.out.exists()
    assert not any(run.info.status == "RUNNING" for run in workspace.runs())


def test_an_added_key_nothing_reads_is_a_one_line_warning(workspace):
    result = workspace.train("+epoch=3", "epochs=1")
    assert result.returncode == 0, result.stderr
    assert "warning: +epoch=3 adds a key that nothing reads; did you mean epochs?" in result.stderr.splitlines()


def test_predict_will_not_import_a_foreign_runs_classes_unless_trusted(workspace):
    result = workspace.train(*LOGITS, "epochs=1")
    assert result.returncode == 0, result.stderr
    refused = workspace_predict(workspace)
    assert refused.returncode == 2 and "--trust" in refused.stderr and f"{USER}.TinyLogitsNet" in refused.stderr
    assert refused.stderr.count("\n") == 1
    trusted = workspace_predict(workspace, "--trust")
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.strip().splitlines()[-1].startswith("accuracy 5/5") or "accuracy" in trusted.stdout


def workspace_predict(workspace, *extra):
    from conftest import run_python

    return run_python("-m", "sweeplab.predict", str(workspace.out), "--n", "5", *extra)
