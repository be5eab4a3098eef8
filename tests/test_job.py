"""The training job end to end: seeded determinism, and Hydra's basic sweeper running one job per value."""
import torch

from sweeplab.job import WEIGHTS_FILE, run_job
from sweeplab.names import KIND_TAG, OUTPUT_DIR_TAG, PARENT_TAG

PER_EPOCH = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


def test_same_config_and_seed_give_identical_metrics(workspace):
    histories, weights, objectives = [], [], []
    for attempt in ("a", "b"):
        out = workspace.root / attempt
        out.mkdir()
        objectives.append(run_job(workspace.compose("epochs=3", f"mlflow.run_name={attempt}"), out))
        weights.append(torch.load(out / WEIGHTS_FILE, weights_only=True)["state_dict"])
    client = workspace.client()
    for run in sorted(workspace.runs(), key=lambda r: r.info.run_name):
        histories.append({k: [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, k)]
                          for k in PER_EPOCH})
    assert len(histories[0]["val_loss"]) == 3
    assert histories[0] == histories[1]
    assert objectives[0] == objectives[1]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_another_seed_gives_other_weights(workspace):
    weights = []
    for seed in (42, 7):
        out = workspace.root / str(seed)
        out.mkdir()
        run_job(workspace.compose("mlflow.enabled=false", f"seed={seed}"), out)
        weights.append(torch.load(out / WEIGHTS_FILE, weights_only=True)["state_dict"])
    assert not all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_basic_sweeper_runs_three_jobs(workspace):
    result = workspace.train("batch_size=32,64,128", "epochs=1", multirun=True)
    assert result.returncode == 0, result.stderr
    jobs = sorted(p.parent for p in (workspace.root / "multirun").rglob(WEIGHTS_FILE))
    assert len(jobs) == 3
    (parent,) = [r for r in workspace.runs() if r.data.tags.get(KIND_TAG) == "grid"]  # one parent (issue 11)
    runs = [r for r in workspace.runs() if r.data.tags.get(PARENT_TAG) == parent.info.run_id]
    assert sorted(int(r.data.params["batch_size"]) for r in runs) == [32, 64, 128]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags[OUTPUT_DIR_TAG] for r in runs} == {str(j) for j in jobs}
