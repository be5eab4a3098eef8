"""What a job records in MLflow, read back through MlflowClient."""
import re

import pytest
from omegaconf import OmegaConf

from sweeplab import tracking
from sweeplab.run_log import RunLog
from sweeplab.job import run_job
from sweeplab.training import NonFiniteLoss
from sweeplab.names import END_REASON_TAG, STATE_TAG, WEIGHTS_FILE

EPOCH_METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "epoch_time_s")


def test_run_is_finished_named_and_tagged(finished_run):
    run = finished_run.run
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "digits-ffn256-adam bs128 lr1e-3"
    tags = run.data.tags
    assert (tags["dataset"], tags["model"], tags["optimizer"], tags["seed"]) == ("digits", "ffn256", "adam", "42")
    assert re.fullmatch(r"[0-9a-f]{40}", tags["mlflow.source.git.commit"])


def test_params_are_the_flattened_resolved_config(finished_run):
    saved = OmegaConf.load(finished_run.space.out / ".hydra" / "config.yaml")
    resolved = OmegaConf.to_container(saved, resolve=True)
    assert "trial" not in resolved  # a sweep's plumbing never enters the user's config
    assert finished_run.run.data.params == tracking.flatten(resolved)
    assert finished_run.run.data.params["batch_size"] == "128"
    assert finished_run.run.data.params["optimizer.lr"] == "0.001"


def test_metrics_per_epoch_and_final(finished_run):
    client, run_id = finished_run.space.client(), finished_run.run.info.run_id
    for key in EPOCH_METRICS:
        assert [m.step for m in client.get_metric_history(run_id, key)] == [1, 2, 3], key
    val = [m.value for m in client.get_metric_history(run_id, "val_accuracy")]
    final = finished_run.run.data.metrics
    assert final["best_val_accuracy"] == max(val) > 0.5
    assert 0.5 < final["test_accuracy"] <= 1.0
    assert final["train_time_s"] > 0 and final["epochs_trained"] == 3


def test_artifacts(finished_run):
    client, run_id = finished_run.space.client(), finished_run.run.info.run_id
    assert {a.path for a in client.list_artifacts(run_id)} >= {"config.yaml", WEIGHTS_FILE, "hydra"}
    assert {a.path for a in client.list_artifacts(run_id, "hydra")} >= {"hydra/config.yaml", "hydra/overrides.yaml"}
    config = OmegaConf.load(client.download_artifacts(run_id, "config.yaml"))
    assert config.dataset.name == "digits" and config.epochs == 3


@pytest.mark.parametrize("failure", ["non-finite loss", "interrupted"])
def test_a_run_that_raises_ends_failed_or_killed(workspace, monkeypatch, failure):
    overrides = ["optimizer=sgd", "optimizer.lr=1e30"] if failure == "non-finite loss" else []
    if failure == "interrupted":
        def interrupted(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr("sweeplab.job.fit", interrupted)
    workspace.out.mkdir()
    with pytest.raises((NonFiniteLoss, KeyboardInterrupt)):
        run_job(workspace.compose(*overrides), workspace.out)
    (run,) = workspace.runs()
    assert run.info.status == ("KILLED" if failure == "interrupted" else "FAILED")  # Ctrl-C: KILLED, as MLflow's own
    assert run.info.end_time is not None
    reason = "interrupted" if failure == "interrupted" else "NonFiniteLoss: "
    assert run.data.tags[STATE_TAG] == "FAIL" and run.data.tags[END_REASON_TAG].startswith(reason)


def test_the_experiment_opens_in_the_model_training_view_and_runs_name_their_dataset(finished_run):
    client = finished_run.space.client()
    experiment = client.get_experiment(finished_run.run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    (entry,) = client.get_run(finished_run.run.info.run_id).inputs.dataset_inputs
    assert entry.dataset.name == "digits" and len(entry.dataset.digest) == 16
    assert "DigitsSource" in entry.dataset.source


def test_trials_starting_together_log_the_same_dataset(tmp_path, mlflow_template):
    """MLflow looks a dataset up and then inserts it: parallel trials that start at the same moment both insert,
    and all but one hit the table's unique key (seen in CI with two joblib trials). Every run must still get it."""
    import shutil
    import threading
    from types import SimpleNamespace

    import torch
    from mlflow.tracking import MlflowClient

    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("race", artifact_location=str(tmp_path / "mlruns"))
    data = SimpleNamespace(train=(torch.zeros(4, 1, 2, 2), torch.arange(4)), test=(torch.zeros(2, 1, 2, 2),
                           torch.arange(2)), num_classes=4, input_shape=(1, 2, 2))
    runs = [RunLog(client, client.create_run(experiment).info.run_id) for _ in range(8)]
    meet, errors = threading.Barrier(len(runs)), []

    def log(run):
        meet.wait()
        try:
            run.dataset("same", data, "test", tmp_path)
        except Exception as error:  # noqa: BLE001 - the test reports whatever escaped
            errors.append(error)

    threads = [threading.Thread(target=log, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for run in runs:
        (logged,) = client.get_run(run.run_id).inputs.dataset_inputs
        assert logged.dataset.name == "same"


def test_sqlite_stores_run_in_wal_mode_and_other_databases_are_left_alone(tmp_path, mlflow_template):
    import shutil
    import sqlite3

    import sqlalchemy

    from sweeplab.sweep.storage import open_storage

    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    tracking.connect(f"sqlite:///{tmp_path}/mlflow.db").search_experiments()
    open_storage(f"sqlite:///{tmp_path}/optuna.db").get_all_studies()
    with sqlalchemy.create_engine(f"sqlite:///{tmp_path}/other.db").begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x)")

    def mode(name):
        with sqlite3.connect(tmp_path / name) as connection:
            return connection.execute("PRAGMA journal_mode").fetchone()[0]

    assert (mode("mlflow.db"), mode("optuna.db"), mode("other.db")) == ("wal", "wal", "delete")


def test_epoch_curves_are_written_at_most_once_a_second_and_whole_at_the_end(tmp_path, mlflow_template, monkeypatch):
    """A population's members would each write every epoch: a run writes its first epoch at once, holds the next
    ones back while its last write is under CURVE_WRITE_S old, and writes them with its end, each at its own step
    and time. A run that ends early (failed, pruned, interrupted) keeps its held epochs too."""
    import shutil

    from mlflow.tracking import MlflowClient

    from sweeplab import run_log

    shutil.copy(mlflow_template, tmp_path / "mlflow.db")
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("curves", artifact_location=str(tmp_path / "mlruns"))

    def steps(run):
        return [(m.step, m.value) for m in client.get_metric_history(run.run_id, "val_accuracy")]

    for status in ("FINISHED", "KILLED"):
        run = RunLog.start(client, experiment, status, {}, {})
        run.metrics({"val_accuracy": 0.5}, step=1)
        assert steps(run) == [(1, 0.5)]  # the first epoch at once
        monkeypatch.setattr(run_log, "CURVE_WRITE_S", 3600.0)
        run.metrics({"val_accuracy": 0.6}, step=2)
        run.metrics({"val_accuracy": 0.7}, step=3)
        assert steps(run) == [(1, 0.5)]  # held back
        run.end(status, metrics={"best_val_accuracy": 0.7})
        assert steps(run) == [(1, 0.5), (2, 0.6), (3, 0.7)]
        assert client.get_run(run.run_id).info.status == status
        monkeypatch.undo()
    monkeypatch.setattr(run_log, "CURVE_WRITE_S", 0.0)
    run = RunLog.start(client, experiment, "every epoch", {}, {})
    for step in (1, 2):
        run.metrics({"val_accuracy": step / 10}, step=step)
    assert steps(run) == [(1, 0.1), (2, 0.2)]  # no interval: each epoch at once
