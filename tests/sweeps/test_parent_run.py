"""The parent run with several workers: a worker that stops while another worker's trial still runs leaves the
parent RUNNING; the worker that stops last ends it FINISHED with the whole study in it; workers that stop at the
same moment log the best model once."""
import multiprocessing
from pathlib import Path

import optuna
import torch
from mlflow.tracking import MlflowClient
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from sweeplab.sweep import parent_run
from sweeplab.sweep.trial_link import OUTPUT_DIR_ATTR
from sweeplab.names import RESULTS_FILE


def new_study_with_parent(new_sweep, tmp_path, name: str):
    """A journal study and its parent run in a fresh MLflow store, and a results file for finish() to log."""
    space = new_sweep(name)
    space.dir.mkdir(parents=True)
    study = optuna.create_study(study_name=name, storage=space.storage(), direction="maximize")
    client = space.client()
    experiment_id = client.create_experiment("sweeplab", artifact_location=f"{space.root}/mlruns")
    parent_id = parent_run.attach(client, experiment_id, study, True, {"n_trials": 2}, {"sweeplab.kind": "study"})
    results = tmp_path / RESULTS_FILE
    results.write_text("best: {}\n")
    return space, study, client, parent_id, results


def test_parent_stays_running_until_the_last_worker_stops(new_sweep, tmp_path):
    _, study, client, parent_id, results = new_study_with_parent(new_sweep, tmp_path, "two-workers")

    first = study.ask({"batch_size": optuna.distributions.CategoricalDistribution([32, 64])})
    second = study.ask({"batch_size": optuna.distributions.CategoricalDistribution([32, 64])})
    study.tell(first, 0.8)  # worker A's trial ends; worker B's is still running
    parent_run.finish(client, parent_id, study, results, "FINISHED")
    parent = client.get_run(parent_id)
    assert parent.info.status == "RUNNING"
    assert parent.data.metrics["trials_complete"] == 1 and parent.data.metrics["best_val_accuracy"] == 0.8

    study.tell(second, 0.9)  # worker B stops last
    parent_run.finish(client, parent_id, study, results, "FINISHED")
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.info.end_time
    assert parent.data.metrics["trials_complete"] == 2 and parent.data.metrics["best_val_accuracy"] == 0.9
    assert parent.data.tags["best_trial"] == "1"
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.COMPLETE]


def test_a_failed_sweep_ends_the_parent_even_with_trials_running(new_sweep, tmp_path):
    _, study, client, parent_id, results = new_study_with_parent(new_sweep, tmp_path, "failed")
    study.ask()  # still RUNNING in another worker
    parent_run.finish(client, parent_id, study, results, "FAILED")
    assert client.get_run(parent_id).info.status == "FAILED"


def saved_job_dir(tmp_path):
    """A job folder as a finished trial leaves it: its config and its weights (best.pt)."""
    from omegaconf import OmegaConf

    from sweeplab.building import build_model
    from sweeplab.job import WEIGHTS_FILE
    from tests.helpers import compose

    job_dir = tmp_path / "trial-0"
    (job_dir / ".hydra").mkdir(parents=True)
    cfg = compose("dataset=digits", "model.width=16")
    OmegaConf.save(cfg, job_dir / ".hydra" / "config.yaml")
    model = build_model(cfg.model, {"in_features": 64, "num_classes": 10})
    torch.save({"state_dict": model.state_dict(), "input_shape": [1, 8, 8], "in_features": 64, "num_classes": 10},
               job_dir / WEIGHTS_FILE)
    return job_dir


def stop_worker(journal: str, study_name: str, tracking_uri: str, parent_id: str, results: str, ready) -> None:
    """What a worker process does when it stops: write the study into the parent run."""
    storage = JournalStorage(JournalFileBackend(journal))
    study = optuna.load_study(study_name=study_name, storage=storage)
    client = MlflowClient(tracking_uri)
    ready.wait()  # both workers stop at the same moment
    parent_run.finish(client, parent_id, study, Path(results), "FINISHED")


def test_workers_that_stop_together_log_the_best_model_once(new_sweep, tmp_path):
    space, study, client, parent_id, results = new_study_with_parent(new_sweep, tmp_path, "together")
    trial = study.ask({"batch_size": optuna.distributions.CategoricalDistribution([32])})
    trial.set_user_attr(OUTPUT_DIR_ATTR, str(saved_job_dir(tmp_path)))
    study.tell(trial, 0.9)
    processes = multiprocessing.get_context("spawn")
    ready = processes.Barrier(2)
    workers = [
        processes.Process(target=stop_worker,
                          args=(str(space.journal), "together", space.uri, parent_id, str(results), ready))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [worker.exitcode for worker in workers] == [0, 0]
    experiment_id = client.get_run(parent_id).info.experiment_id
    logged = [m for m in client.search_logged_models([experiment_id]) if m.source_run_id == parent_id]
    assert len(logged) == 1, logged
    assert client.get_run(parent_id).data.tags[parent_run.MODEL_TRIAL_TAG] == "0"


def test_a_worker_that_stops_while_this_one_logs_the_model_leaves_the_parent_finished(new_sweep, tmp_path, monkeypatch):
    space, study, client, parent_id, results = new_study_with_parent(new_sweep, tmp_path, "overtaken")
    mine = study.ask({"batch_size": optuna.distributions.CategoricalDistribution([32])})
    mine.set_user_attr(OUTPUT_DIR_ATTR, str(saved_job_dir(tmp_path)))
    study.tell(mine, 0.9)
    theirs = study.ask({"batch_size": optuna.distributions.CategoricalDistribution([32])})  # another worker's
    log_best_model = parent_run._log_best_model

    def other_worker_stops_meanwhile(*args):
        log_best_model(*args)  # seconds, in a real study: long enough for the other worker's last trial to end
        study.tell(theirs, 0.5)
        parent_run.finish(client, parent_id, study, results, "FINISHED")

    monkeypatch.setattr(parent_run, "_log_best_model", other_worker_stops_meanwhile)
    parent_run.finish(client, parent_id, study, results, "FINISHED")
    assert client.get_run(parent_id).info.status == "FINISHED"


def test_a_killed_trials_run_is_found_and_failed_even_before_the_trial_named_it(new_sweep, tmp_path):
    """A worker killed between its job's create_run and the trial's run-id attribute leaves a RUNNING child that no
    trial names: the resumed sweep finds it by its tags and ends it FAILED, rather than adding a second child."""
    from sweeplab.names import FAIL_REASON_ATTR, PARENT_TAG, RUN_ID_ATTR, STATE_TAG

    space, study, client, parent_id, _ = new_study_with_parent(new_sweep, tmp_path, "orphan-run")
    trial = study.ask()
    study.tell(trial, state=TrialState.FAIL)
    experiment = client.get_run(parent_id).info.experiment_id
    orphan = client.create_run(experiment, tags={PARENT_TAG: parent_id, "optuna.study": study.study_name,
                                                 "optuna.trial": str(trial.number)}).info.run_id
    frozen = study.trials[0]
    assert RUN_ID_ATTR not in frozen.user_attrs and FAIL_REASON_ATTR not in frozen.user_attrs
    parent_run.fail_child_run(client, frozen, "its worker died", parent_id, study_name=study.study_name)
    children = client.search_runs([experiment], filter_string=f"tags.`{PARENT_TAG}` = '{parent_id}'")
    assert [c.info.run_id for c in children] == [orphan]
    assert children[0].info.status == "FAILED" and children[0].data.tags[STATE_TAG] == "FAIL"


def test_a_trial_whose_worker_died_after_its_job_finished_keeps_the_recorded_result(new_sweep, tmp_path):
    """A worker killed between its job's end (run FINISHED, state COMPLETE) and telling the study: the next sweep
    reads the result back from the run and completes the trial with it, instead of failing a trained trial. A dead
    worker's trial whose run had not finished is FAIL, as before."""
    import socket
    import subprocess
    import sys

    from sweeplab.names import FAIL_REASON_ATTR, PARENT_TAG, RECOVERED_ATTR, RUN_ID_ATTR, STATE_TAG, WORKER_ATTR, \
        WORKER_DIED
    from sweeplab.sweep.study import reap_dead_trials

    space, study, client, parent_id, _ = new_study_with_parent(new_sweep, tmp_path, "dead-after-its-job")
    experiment = client.get_run(parent_id).info.experiment_id
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    finished, training = study.ask(), study.ask()
    for trial in (finished, training):
        run_id = client.create_run(experiment, tags={PARENT_TAG: parent_id}).info.run_id
        trial.set_user_attr(RUN_ID_ATTR, run_id)
        trial.set_user_attr(WORKER_ATTR, f"{socket.gethostname()}:{gone.pid}")
    finished_run = study.trials[finished.number].user_attrs[RUN_ID_ATTR]
    client.log_metric(finished_run, "best_val_accuracy", 0.875)
    client.set_tag(finished_run, STATE_TAG, "COMPLETE")
    client.set_terminated(finished_run, "FINISHED")

    failed = []
    reaped = reap_dead_trials(study, on_failed=lambda s, t: failed.append(t.number), recover=lambda s, t: (
        parent_run.recorded_result(client, t, ("val_accuracy",), parent_id, s.study_name)))
    recovered, lost = study.trials[finished.number], study.trials[training.number]
    assert recovered.state == TrialState.COMPLETE and recovered.value == 0.875
    assert recovered.user_attrs[RECOVERED_ATTR] == finished_run
    assert lost.state == TrialState.FAIL and lost.user_attrs[FAIL_REASON_ATTR] == WORKER_DIED
    assert reaped == failed == [training.number]


def test_trials_whose_worker_died_before_their_job_began_do_not_count_toward_n_trials():
    """A population's pool holds trials RUNNING before their job begins; a worker killed then leaves them FAIL with
    nothing trained. Like interrupted trials, a rerun replaces them. A trial whose job had begun (its output folder
    recorded), or that failed for a reason of its own, counts."""
    from sweeplab.names import FAIL_REASON_ATTR, INTERRUPTED, OUTPUT_DIR_ATTR, WORKER_DIED
    from sweeplab.sweep.study import counted

    study = optuna.create_study(direction="maximize")
    ended = {
        "complete": {}, "died training": {FAIL_REASON_ATTR: WORKER_DIED, OUTPUT_DIR_ATTR: "/tmp/1"},
        "died waiting": {FAIL_REASON_ATTR: WORKER_DIED}, "stale, waiting": {},  # Optuna's heartbeat sets no reason
        "its own error": {FAIL_REASON_ATTR: "ValueError: lr"}, "interrupted": {FAIL_REASON_ATTR: INTERRUPTED},
    }
    for name, attrs in ended.items():
        trial = study.ask()
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        if name == "complete":
            study.tell(trial, 0.5)
        else:
            study.tell(trial, state=TrialState.FAIL)
    assert [list(ended)[n] for n in counted(study)] == ["complete", "died training", "its own error"]
