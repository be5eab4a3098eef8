"""Servers that ask who is calling: a worker whose MLflow login or database password is missing or wrong, or whose
MLflow user may not write to the experiment, stops before the first trial in one line; a sweep that may, leaves no
password anywhere it writes."""
import os
import uuid
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.engine import make_url

from .conftest import check_study, services

pytestmark = pytest.mark.slow


def assert_refused_in_one_line(study, code: int, log: str, *needles: str) -> str:
    """Exit code 2, one `error:` line containing every needle, no traceback, no trial, nothing left behind."""
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1, log[-3000:]
    assert all(needle in errors[0] for needle in needles), errors[0]
    assert "Traceback" not in log and "Launching" not in log, log[-3000:]
    assert not study.exists()  # no study in the database
    assert study.runs() == []  # and no MLflow run
    return errors[0]


@pytest.mark.parametrize("login", ["none", "wrong password"])
def test_worker_that_mlflow_refuses_stops_before_the_first_trial(study, login):
    env = ({"MLFLOW_TRACKING_USERNAME": None, "MLFLOW_TRACKING_PASSWORD": None} if login == "none"
           else {"MLFLOW_TRACKING_PASSWORD": "not-the-password"})
    code, log = study.run("w0", "hydra.sweeper.n_trials=2", env=env)
    error = assert_refused_in_one_line(study, code, log, study.servers.mlflow, "refused", "401",
                                       "MLFLOW_TRACKING_USERNAME")
    assert ("user 'sweeper'" in error) == (login != "none")
    assert "not-the-password" not in log


def test_worker_with_a_wrong_database_password_stops_before_the_first_trial(study):
    code, log = study.run("w0", "hydra.sweeper.n_trials=2", env={"PGPASSWORD": "not-the-password"})
    url = make_url(study.servers.postgres)
    assert_refused_in_one_line(study, code, log, f"{url.host}:{url.port}/{url.database}",
                               'password authentication failed for user "sweeplab"', "~/.pgpass")
    assert "not-the-password" not in log


def test_a_password_in_the_storage_url_is_refused_and_never_shown(study):
    with_password = make_url(study.servers.postgres).set(password=services.pgpass_password("sweeplab"))
    code, log = study.run("w0", "hydra.sweeper.n_trials=2",
                          f"hydra.sweeper.storage={with_password.render_as_string(hide_password=False)}")
    assert_refused_in_one_line(study, code, log, "sweeplab:***@", "~/.pgpass")
    assert services.pgpass_password("sweeplab") not in log


def test_user_without_permission_on_the_experiment_cannot_write_to_it(study, servers):
    """Basic-auth's default READ: another team's user sees the experiment but may not log to it, neither through
    MLflow's client nor as a sweep worker (which says so before the first trial), until the admin grants EDIT."""
    owner = MlflowClient(servers.mlflow)  # the sweeps' user creates the experiment: MANAGE on it
    experiment_id = owner.create_experiment(study.name)
    admin = services.admin_client(servers.mlflow)
    outsider, password = f"other-team-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin.create_user(outsider, password)
    as_outsider = {"MLFLOW_TRACKING_USERNAME": outsider, "MLFLOW_TRACKING_PASSWORD": password}

    os.environ.update(as_outsider)
    try:
        assert MlflowClient(servers.mlflow).get_experiment(experiment_id).name == study.name  # may read
        with pytest.raises(MlflowException) as refused:
            MlflowClient(servers.mlflow).create_run(experiment_id)
        assert refused.value.error_code == "PERMISSION_DENIED"
    finally:
        os.environ.update(servers.credentials)

    code, log = study.run("w0", "hydra.sweeper.n_trials=2", env=as_outsider)
    assert_refused_in_one_line(study, code, log, servers.mlflow, f"user '{outsider}'", f"experiment '{study.name}'",
                               "permission: READ", "EDIT")

    admin.grant_user_permission(outsider, "experiment", experiment_id, "EDIT")  # what the runbook does per team
    os.environ.update(as_outsider)
    try:
        run = MlflowClient(servers.mlflow).create_run(experiment_id)
    finally:
        os.environ.update(servers.credentials)
    assert owner.get_run(run.info.run_id).info.experiment_id == experiment_id


def test_no_password_is_saved_logged_or_tracked(study, servers):
    """Credentials reach the worker through the environment and PGPASSFILE only: after a sweep, none of the servers'
    passwords is in the worker's log, any file of the sweep folder (Hydra's saved configs, optimization_results.yaml,
    the jobs' logs), or any MLflow param, tag or artifact of the study."""
    passwords = {os.environ[f"SWEEPLAB_TEST_{k}_PASSWORD"] for k in ("MLFLOW", "MLFLOW_ADMIN", "POSTGRES_ADMIN")}
    passwords |= {services.pgpass_password(role) for role in ("sweeplab", "mlflow")}
    code, log = study.run("w0", "hydra.sweeper.n_trials=2", "epochs=1")
    assert code == 0, log[-3000:]
    check_study(study, 2)
    assert (study.root / "w0" / "optimization_results.yaml").exists()

    texts = {"worker log": log}
    texts.update({str(path): path.read_text(errors="replace") for path in study.root.rglob("*")
                  if path.is_file() and path.suffix not in (".pt", ".png", ".gz", ".npz")})
    assert any(path.endswith("overrides.yaml") for path in texts), sorted(texts)[:20]  # Hydra's saved configs
    client = study.client()
    for run in study.runs():
        texts[f"run {run.info.run_name} params, tags"] = repr(run.data.params) + repr(run.data.tags)
        local = Path(client.download_artifacts(run.info.run_id, "", study.root / "artifacts" / run.info.run_id))
        texts.update({f"artifact {path}": path.read_text(errors="replace") for path in local.rglob("*")
                      if path.is_file() and path.suffix not in (".pt", ".png")})
    assert any(name.startswith("artifact") and name.endswith("config.yaml") for name in texts)
    leaks = [(where, password[:3] + "...") for where, text in texts.items() for password in passwords
             if password in text]
    assert not leaks
