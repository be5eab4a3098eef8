"""MLflow tracking: the store or server reached and checked, the experiment, the run's params as flat keys; a run's
writes are sweeplab.run_log's (through MlflowClient: no global active-run state to inherit)."""
import functools
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.credentials import get_default_host_creds, read_mlflow_creds
from mlflow.utils.rest_utils import http_request

from sweeplab.errors import TrackingError, first_line
from sweeplab.names import EXPERIMENT_KIND_TAG
from sweeplab.paths import project_root
from sweeplab.sqlite_wal import use_wal

WRITE_PERMISSIONS = ("EDIT", "MANAGE")  # basic-auth's permissions that may create runs in an experiment


def connect(tracking_uri: str, timeout_s: float = 5.0, patience_s: float = 0.0) -> MlflowClient:
    """Fail fast, naming the URI, when the tracking store cannot be reached; a server that is down is asked again
    for up to ``patience_s`` (a trial in a running sweep rides out a server restart instead of failing).

    One client per tracking URI and process: the jobs of an in-process sweep reuse the first job's client, checked
    once (later calls then ride on MLflow's own retries)."""
    if tracking_uri in _clients:
        return _clients[tracking_uri]
    scheme = urlparse(tracking_uri).scheme
    if urlparse(tracking_uri).password:
        raise TrackingError(
            "mlflow.tracking_uri has a password in it, which every trial's saved config would carry; remove it "
            "and set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) instead"
        )
    if scheme in ("http", "https"):
        deadline = time.monotonic() + patience_s
        while True:
            try:
                urllib.request.urlopen(f"{tracking_uri.rstrip('/')}/health", timeout=timeout_s).close()
                break
            except (urllib.error.URLError, OSError) as error:
                if time.monotonic() < deadline:
                    time.sleep(2)
                    continue
                reason = getattr(error, "reason", error)
                raise TrackingError(
                    f"MLflow tracking server {tracking_uri} is unreachable ({reason}); start it, "
                    f"or set mlflow.tracking_uri=<reachable URI>, or mlflow.enabled=false"
                ) from None
    elif scheme == "sqlite":
        folder = Path(tracking_uri.removeprefix("sqlite:///")).parent
        if not (folder.is_dir() and os.access(folder, os.W_OK)):
            raise TrackingError(
                f"MLflow tracking store {tracking_uri}: folder {folder} is missing or not writable; "
                f"set mlflow.tracking_uri=sqlite:///<writable path>/mlflow.db"
            )
        use_wal(tracking_uri)
    elif scheme in ("", "file"):
        raise TrackingError(
            f"mlflow.tracking_uri={tracking_uri!r} is a file store, which MLflow 3 refuses; "
            f"use sqlite:///<path>/mlflow.db or http://<server>"
        )
    client = MlflowClient(tracking_uri)
    if scheme in ("http", "https"):
        check_login(client)
    _clients[tracking_uri] = client
    return client


_clients: dict[str, MlflowClient] = {}


def check_login(client: MlflowClient) -> None:
    """/health answers anyone: one call that needs a login finds missing or wrong credentials now, in one line."""
    try:
        client.search_experiments(max_results=1)
    except MlflowException as error:
        if error.error_code not in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            raise TrackingError(f"MLflow tracking server {client.tracking_uri} failed: {first_line(error)}") from None
        user = read_mlflow_creds().username
        who = f"the login of user '{user}'" if user else "a request without credentials"
        raise TrackingError(
            f"MLflow tracking server {client.tracking_uri} refused {who} ({_status(error)}); set "
            f"MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) to an account of "
            f"that server, in the environment or ~/.mlflow/credentials"
        ) from None


def check_can_write(client: MlflowClient, experiment: str) -> None:
    """On a server with basic-auth a user may read an experiment without being allowed to log to it: say so before
    the first trial rather than when its run is created. Servers without basic-auth (any other answer) pass."""
    if not urlparse(client.tracking_uri).scheme.startswith("http"):
        return
    creds = get_default_host_creds(client.tracking_uri)
    me = http_request(creds, "/api/2.0/mlflow/users/current", "GET", max_retries=0)
    if me.status_code != 200 or me.json()["user"]["is_admin"]:
        return
    username = me.json()["user"]["username"]
    try:
        found = client.get_experiment_by_name(experiment)
    except MlflowException as error:
        if error.error_code != "PERMISSION_DENIED":
            raise TrackingError(f"MLflow tracking server {client.tracking_uri} failed: {first_line(error)}") from None
        permission = "none, not even READ"
    else:
        if found is None:
            return  # whoever creates it may write to it (MANAGE)
        grant = http_request(creds, "/api/3.0/mlflow/users/permissions/get", "GET", max_retries=0, params={
            "username": username, "resource_type": "experiment", "resource_id": found.experiment_id})
        permission = grant.json().get("permission") if grant.status_code == 200 else None
        if permission is None or permission in WRITE_PERMISSIONS:
            return
    raise TrackingError(
        f"MLflow tracking server {client.tracking_uri} does not let user '{username}' write to experiment "
        f"'{experiment}' (permission: {permission}); ask the server's admin for EDIT on it, or set "
        f"mlflow.experiment=<an experiment of yours>"
    )


def _status(error: MlflowException) -> str:
    return {"UNAUTHENTICATED": "401 Unauthorized", "PERMISSION_DENIED": "403 Forbidden"}[error.error_code]


def get_or_create_experiment(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    """Create the experiment once; when another process wins the race, use theirs. Remembered per client."""
    key = (id(client), name)
    if key not in _experiments:
        _experiments[key] = _get_or_create_experiment(client, name, artifact_root)
    return _experiments[key]


_experiments: dict[tuple, str] = {}


def _get_or_create_experiment(client: MlflowClient, name: str, artifact_root: str | None) -> str:
    try:
        experiment = client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if artifact_root and not urlparse(client.tracking_uri).scheme.startswith("http"):
            location = (Path(artifact_root) / name).as_uri()
        # MLflow 3 opens a new experiment in its GenAI view unless told it holds model training.
        return client.create_experiment(name, artifact_location=location,
                                        tags={EXPERIMENT_KIND_TAG: "custom_model_development"})
    except MlflowException as error:
        if error.error_code == "RESOURCE_ALREADY_EXISTS":
            return client.get_experiment_by_name(name).experiment_id
        raise TrackingError(f"MLflow tracking store {client.tracking_uri} failed: {first_line(error)}") from None


def where_to_look(tracking_uri: str, experiment_id: str, default_db: Path) -> str:
    """How a user opens an experiment's runs table. MLflow 3's UI opens an experiment in its GenAI view unless
    asked for the runs (whatever the experiment's tags say), so the address names the runs page."""
    page = f"#/experiments/{experiment_id}/runs?workflowType=machine_learning"
    if tracking_uri.startswith("sqlite"):
        command = "mlflow ui" if tracking_uri == f"sqlite:///{default_db}" else f"mlflow ui --backend-store-uri {tracking_uri}"
        return f"{command}   then http://127.0.0.1:5000/{page}"
    return f"{tracking_uri.rstrip('/')}/{page}"


@functools.cache
def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=project_root(), capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None


def flatten(config: dict, prefix: str = "") -> dict[str, str]:
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = str(value)
    return flat
