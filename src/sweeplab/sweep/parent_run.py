"""The study's MLflow parent run: created once by the process that created the study, found again by every
other worker and on every resume (its id lives in the study's user attributes)."""
import logging
import os
import socket
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sweeplab.errors import first_line
from sweeplab.labels import values_text
from sweeplab.objective import summary_key
from sweeplab.report.model import as_table
from sweeplab.sweep.report import objective_name
from sweeplab.names import (
    CONFIRMATION_TABLE, END_REASON_TAG, MODEL_TRIAL_TAG, OUTPUT_DIR_ATTR, PARENT_RUN_ATTR, PARENT_TAG, RUN_ID_ATTR,
    STATE_TAG, TEST_ACCURACY_ATTR,
)
from sweeplab.sweep.study import best_search_trial, counts

log = logging.getLogger(__name__)


def attach(client: MlflowClient, experiment_id: str, study, created: bool, params: dict, tags: dict,
           wait_s: float = 60.0) -> str:
    run_id = study.user_attrs.get(PARENT_RUN_ATTR)
    deadline = time.monotonic() + (0 if created else wait_s)
    while not run_id and time.monotonic() < deadline:  # the creator is making it right now
        time.sleep(0.5)
        run_id = study.user_attrs.get(PARENT_RUN_ATTR)
    if run_id:
        client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        return run_id
    run = client.create_run(experiment_id, run_name=f"study-{study.study_name}", tags=tags)
    client.log_batch(run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
    study.set_user_attr(PARENT_RUN_ATTR, run.info.run_id)
    return run.info.run_id


def fail_child_run(client: MlflowClient, trial, reason: str, parent_run_id: str | None = None,
                   status: str = "FAILED", study_name: str | None = None) -> None:
    """End a failed trial's child run FAILED (KILLED when interrupted), so it does not stay RUNNING forever: the run
    the trial names, or else the one its job made before it could name it (the worker killed in between). A trial
    that failed before its job could start a run (e.g. a value the data rejects) gets a FAILED child here: every
    trial has its child."""
    run_id = None
    try:
        run_id = _child_run_id(client, trial, parent_run_id, study_name)
        if not run_id:
            if parent_run_id:
                _create_failed_child(client, parent_run_id, trial, reason)
            return
        if client.get_run(run_id).info.status == "RUNNING":
            client.log_batch(run_id, tags=[RunTag(STATE_TAG, "FAIL"), RunTag(END_REASON_TAG, reason)])
            client.set_terminated(run_id, status)
    except Exception as error:  # the server may be down as well; the trial is FAIL in Optuna regardless
        log.warning("could not end MLflow run %s of trial %d: %s", run_id, trial.number, error)


def recorded_result(client: MlflowClient, trial, metrics: tuple, parent_run_id: str | None = None,
                    study_name: str | None = None) -> tuple[str, list[float]] | None:
    """A trial's run and objective values as its job recorded them, when the job ended its run FINISHED and COMPLETE
    (its worker then died before telling the study); None when the run is missing, unfinished or incomplete."""
    try:
        run_id = _child_run_id(client, trial, parent_run_id, study_name)
        run = client.get_run(run_id) if run_id else None
    except Exception as error:  # the server may be down: the trial is failed as its worker's, as before
        log.warning("could not read the MLflow run of trial %d: %s", trial.number, error)
        return None
    if not run or run.info.status != "FINISHED" or run.data.tags.get(STATE_TAG) != "COMPLETE":
        return None
    values = [run.data.metrics.get(summary_key(m)) for m in metrics]
    return None if None in values else (run_id, values)


def _child_run_id(client: MlflowClient, trial, parent_run_id: str | None, study_name: str | None) -> str | None:
    """The run the trial names, or else the one its job made before it could name it (found by its tags)."""
    run_id = trial.user_attrs.get(RUN_ID_ATTR)
    if not run_id and parent_run_id and study_name:
        run_id = _unnamed_child(client, parent_run_id, study_name, trial.number)
    return run_id


def _unnamed_child(client: MlflowClient, parent_run_id: str, study_name: str, number: int) -> str | None:
    experiment = client.get_run(parent_run_id).info.experiment_id
    escaped = study_name.replace("'", "\\'")
    found = client.search_runs([experiment], max_results=1, filter_string=(
        f"tags.`{PARENT_TAG}` = '{parent_run_id}' and tags.`optuna.study` = '{escaped}' and "
        f"tags.`optuna.trial` = '{number}'"))
    return found[0].info.run_id if found else None


def _create_failed_child(client: MlflowClient, parent_run_id: str, trial, reason: str) -> None:
    parent = client.get_run(parent_run_id)
    tags = {
        PARENT_TAG: parent_run_id, "optuna.study": parent.data.tags.get("optuna.study", ""),
        "optuna.trial": str(trial.number), "optuna.sampler": parent.data.params.get("sampler", ""),
        "seed": parent.data.params.get("sampler.seed", ""), STATE_TAG: "FAIL", END_REASON_TAG: reason,
    }
    name = " ".join([f"t{trial.number}", *values_text(trial.params)])
    run = client.create_run(parent.info.experiment_id, run_name=name,
                            tags={k: str(v)[:5000] for k, v in tags.items() if v != ""})
    client.log_batch(run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in trial.params.items()])
    client.set_terminated(run.info.run_id, "FAILED")


def finish(client: MlflowClient, run_id: str, study, results: Path, status: str, confirmed=None) -> None:
    """Write the study's current state into the parent run; log the best trial's model when it changed. With a
    confirmation, the confirmed best's metrics and the table of every confirmed configuration go there too."""
    best = best_search_trial(study)
    n = counts(study)
    metrics = {f"trials_{state}": count for state, count in n.items()}
    metrics["epochs_trained"] = sum(len(t.intermediate_values) for t in study.get_trials(deepcopy=False))
    tags = {}
    if best:
        metrics[f"best_{objective_name(study)}"] = best.value
        tags = {f"best.{k}": str(v) for k, v in best.params.items()}
        tags.update({"best_trial": str(best.number), "best_child_run_id": best.user_attrs.get(RUN_ID_ATTR, "")})
    if confirmed:
        metrics.update(confirmed_metrics(confirmed))
        tags.update({f"confirmed.{k}": str(v) for k, v in confirmed.best.params.items()})
        tags["confirmed_trial"] = str(confirmed.best.trial)
        best = study.get_trials(deepcopy=False)[confirmed.best.trial]  # the model worth logging
    # Every worker of a study writes here when it stops, in any order: the metrics' step is the number of finished
    # trials, so MLflow shows the most complete snapshot; a worker whose view is older leaves the tags and model alone.
    finished = n["complete"] + n["pruned"] + n["fail"]
    stored = client.get_run(run_id).data.metrics
    outdated = finished < sum(stored.get(f"trials_{state}", 0) for state in ("complete", "pruned", "fail"))
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(k, float(v), now, finished) for k, v in metrics.items()],
        tags=[] if outdated else [RunTag(k, v) for k, v in tags.items()],
    )
    client.log_artifact(run_id, str(results))
    if confirmed:
        client.log_dict(run_id, as_table(confirmation_table(confirmed)), CONFIRMATION_TABLE)  # replaced, not appended
    run = client.get_run(run_id)
    if best and not outdated and run.data.tags.get(MODEL_TRIAL_TAG) != str(best.number):
        if _claim_model(client, run_id, best.number):
            _log_best_model(client, run_id, best, _model_metrics(study, best, confirmed))
    if status == "FINISHED" and _trials_running(study):
        # Another worker's trials are still running: the worker that stops last (it sees none running) ends the run.
        # (Logging the model ended it: mlflow.start_run's context does.) The other worker may have stopped since we
        # looked, and ended the run before this write: looking again after it closes that gap.
        client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
        if not _trials_running(study):
            client.set_terminated(run_id, status)
    else:
        client.set_terminated(run_id, status)


def confirmed_metrics(confirmed) -> dict:
    metrics = {"confirmed_mean": confirmed.best.mean, "confirmed_se": confirmed.best.se}
    if confirmed.best.test_mean is not None:
        metrics.update(confirmed_test_accuracy=confirmed.best.test_mean, confirmed_test_se=confirmed.best.test_se)
    if confirmed.baseline:
        metrics.update(baseline_mean=confirmed.baseline.mean, baseline_se=confirmed.baseline.se,
                       gain=confirmed.gain, gain_se=confirmed.gain_se)
        if confirmed.baseline.test_mean is not None:
            metrics["baseline_test_accuracy"] = confirmed.baseline.test_mean
    return {k: v for k, v in metrics.items() if v == v}  # NaN (one seed: no standard error) is left out


def confirmation_table(confirmed) -> dict:
    """One row per confirmed configuration: its trial, values, mean ± standard error over the fresh seeds."""
    rows = confirmed.table
    return {
        "trial": [e.trial for e in rows],
        "role": ["best" if e is confirmed.best else "baseline" if e is confirmed.baseline else "top-k" for e in rows],
        **{key: [e.params.get(key) for e in rows] for key in dict.fromkeys(k for e in rows for k in e.params)},
        "seeds": [len(e.values) for e in rows],
        "mean": [e.mean for e in rows],
        "se": [e.se for e in rows],
        "test_accuracy_mean": [e.test_mean for e in rows],
        "test_accuracy_se": [e.test_se for e in rows],
    }


def _trials_running(study) -> bool:
    """Looked up afresh: the counts written above may be seconds old by now."""
    return bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _claim_model(client: MlflowClient, run_id: str, trial_number: int) -> bool:
    """Of several workers that stop at the same moment with the same new best trial, only one may log its model.
    MLflow params are write-once (the store refuses another value for a key), so the first to set this one wins."""
    worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    try:
        client.log_param(run_id, f"best_model.trial_{trial_number}.logged_by", worker)
        return True
    except MlflowException as error:
        log.info("best trial %d: another worker logs its model (%s)", trial_number, first_line(error))
        return False


def _model_metrics(study, best, confirmed) -> dict:
    """What the logged model scores: its confirmed mean ± SE over seeds, else its search trial's values."""
    objective = objective_name(study)
    if confirmed and confirmed.best.trial == best.number:
        e = confirmed.best
        metrics = {f"{objective}_mean": e.mean, f"{objective}_se": e.se, "test_accuracy_mean": e.test_mean,
                   "test_accuracy_se": e.test_se, "seeds": len(e.values)}
    else:
        # Not best_<objective>: mlflow.log_metrics logs to the parent run too, whose best_<objective> is the study's.
        metrics = {objective: best.value, "test_accuracy": best.user_attrs.get(TEST_ACCURACY_ATTR)}
    return {k: float(v) for k, v in metrics.items() if v is not None and v == v}


def _log_best_model(client: MlflowClient, run_id: str, best, metrics: dict) -> None:
    """The best configuration's model, with its winning values as params, its scores as metrics and the dataset
    it was trained on. Logged on the CPU on purpose: MLflow checks the input example by loading the model, on the
    GPU where there is one, and warns that CPU weights cannot load there."""
    import mlflow
    import torch

    from sweeplab.checkpoint import load_trained_model
    from sweeplab.errors import SweeplabError

    output_dir = best.user_attrs.get(OUTPUT_DIR_ATTR)
    try:
        model, facts = load_trained_model(Path(output_dir))
    except (OSError, TypeError, SweeplabError) as error:
        log.warning("best trial %d: no weights to log as a model (%s)", best.number, error)
        return
    dataset = _dataset_of(client, best.user_attrs.get(RUN_ID_ATTR))
    mlflow.set_tracking_uri(client.tracking_uri)
    with _environment("MLFLOW_DEFAULT_PREDICTION_DEVICE", "cpu"), mlflow.start_run(run_id=run_id):
        # Created first, so that its params are the winning values alone (log_model would add the run's: the space).
        logged = mlflow.initialize_logged_model(name="best_model", source_run_id=run_id,
                                                params={k: str(v) for k, v in best.params.items()},
                                                tags={"optuna.trial": str(best.number)})
        mlflow.pytorch.log_model(
            model.cpu(), name="best_model", input_example=torch.zeros(2, *facts["input_shape"]).numpy(),
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"], model_id=logged.model_id,
        )
        mlflow.log_metrics(metrics, model_id=logged.model_id, dataset=dataset)
    if dataset is not None:
        client.log_inputs(run_id, [DatasetInput(dataset, [InputTag("mlflow.data.context", "train")])])
    client.set_tag(run_id, MODEL_TRIAL_TAG, str(best.number))


def _dataset_of(client: MlflowClient, run_id: str | None):
    """The dataset input of a trial's run (what the runs table shows in its Dataset column)."""
    if not run_id:
        return None
    inputs = client.get_run(run_id).inputs
    return inputs.dataset_inputs[0].dataset if inputs and inputs.dataset_inputs else None


@contextmanager
def _environment(name: str, value: str):
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def end_interrupted(client: MlflowClient, run_id: str, study) -> None:
    """After Ctrl-C or SIGTERM: the parent ends KILLED, unless another worker's trials still run (it ends it)."""
    try:
        if not _trials_running(study):
            client.set_terminated(run_id, "KILLED")
    except Exception as error:  # an interrupt must end quickly, whatever the server does
        log.warning("could not end the parent run %s: %s", run_id, first_line(error))
