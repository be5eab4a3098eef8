"""The parent run with several workers: a worker that stops while another worker's trial still runs leaves the
parent RUNNING; the worker that stops last ends it FINISHED with the whole study in it."""
import optuna
from optuna.trial import TrialState

from sweeplab.sweep import parent_run


def new_study_with_parent(new_sweep, tmp_path, name: str):
    """A journal study and its parent run in a fresh MLflow store, and a results file for finish() to log."""
    space = new_sweep(name)
    space.dir.mkdir(parents=True)
    study = optuna.create_study(study_name=name, storage=space.storage(), direction="maximize")
    client = space.client()
    experiment_id = client.create_experiment("sweeplab", artifact_location=f"{space.root}/mlruns")
    parent_id = parent_run.attach(client, experiment_id, study, True, {"n_trials": 2}, {"sweeplab.kind": "study"})
    results = tmp_path / "optimization_results.yaml"
    results.write_text("best: {}\n")
    return study, client, parent_id, results


def test_parent_stays_running_until_the_last_worker_stops(new_sweep, tmp_path):
    study, client, parent_id, results = new_study_with_parent(new_sweep, tmp_path, "two-workers")

    first = study.ask({"batch_size": optuna.distributions.CategoricalDistribution([32, 64])})
    second = study.ask({"batch_size": optuna.distributions.CategoricalDistribution([32, 64])})
    study.tell(first, 0.8)  # worker A's trial ends; worker B's is still running
    parent_run.finish(client, parent_id, study, results, [], "FINISHED")
    parent = client.get_run(parent_id)
    assert parent.info.status == "RUNNING"
    assert parent.data.metrics["trials_complete"] == 1 and parent.data.metrics["best_val_accuracy"] == 0.8

    study.tell(second, 0.9)  # worker B stops last
    parent_run.finish(client, parent_id, study, results, [], "FINISHED")
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.info.end_time
    assert parent.data.metrics["trials_complete"] == 2 and parent.data.metrics["best_val_accuracy"] == 0.9
    assert parent.data.tags["best_trial"] == "1"
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.COMPLETE]


def test_a_failed_sweep_ends_the_parent_even_with_trials_running(new_sweep, tmp_path):
    study, client, parent_id, results = new_study_with_parent(new_sweep, tmp_path, "failed")
    study.ask()  # still RUNNING in another worker
    parent_run.finish(client, parent_id, study, results, [], "FAILED")
    assert client.get_run(parent_id).info.status == "FAILED"
