"""Real Fashion-MNIST from Debian's dataset-fashion-mnist: 2 epochs of the notes' net, recorded in MLflow."""
from pathlib import Path

import pytest

from sweeplab.names import WEIGHTS_FILE

SYSTEM_COPY = Path("/usr/share/datasets/fashion-mnist")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not SYSTEM_COPY.is_dir(), reason=f"{SYSTEM_COPY} is absent: apt-get install dataset-fashion-mnist"
    ),
]


def test_fashion_mnist_two_epochs(workspace):
    result = workspace.train("dataset=fashion_mnist", "epochs=2")
    assert result.returncode == 0, result.stderr

    raw = workspace.root / "data" / "FashionMNIST" / "raw"
    assert len(list(raw.glob("*-ubyte"))) == 4  # copied from the system copy, not downloaded
    (run,) = workspace.runs()
    client, run_id = workspace.client(), run.info.run_id
    assert run.info.status == "FINISHED"
    assert run.data.metrics["best_val_accuracy"] > 0.84
    assert run.data.metrics["test_accuracy"] > 0.80
    params = run.data.params
    assert (params["dataset.name"], params["epochs"], params["batch_size"], params["val_size"]) == (
        "fashion_mnist", "2", "128", "10000")
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_time_s"):
        assert [m.step for m in client.get_metric_history(run_id, key)] == [1, 2], key
    assert {a.path for a in client.list_artifacts(run_id)} >= {"config.yaml", WEIGHTS_FILE, "hydra"}
    assert {a.path for a in client.list_artifacts(run_id, "hydra")} >= {"hydra/config.yaml"}
