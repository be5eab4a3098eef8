"""Scale-out helpers: worker processes (`train.py -m hydra/sweeper=optuna`) sharing one study on a real PostgreSQL
and one real MLflow tracking server, both started on 127.0.0.1 by tests/services.py (`make test` does that).

Every test gets its own study and MLflow experiment (unique names), so tests never see each other's trials.
"""
import importlib.util
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from sweeplab.names import KIND_TAG, PARENT_TAG, STATE_TAG
from tests.helpers import PROJECT_ROOT

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def _load(name: str):
    """tests/<name>.py, a script as well as a module: services.py (to start a second MLflow server the way `make test`
    starts the first) and slurm.py (a one-node SLURM cluster)."""
    spec = importlib.util.spec_from_file_location(f"sweeplab_test_{name}", PROJECT_ROOT / "tests" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


services = _load("services")
one_node_slurm = _load("slurm")


@pytest.fixture(scope="session")
def servers():
    postgres, mlflow = os.environ.get("SWEEPLAB_TEST_POSTGRES_URL"), os.environ.get("SWEEPLAB_TEST_MLFLOW_URL")
    username, password = (os.environ.get(f"SWEEPLAB_TEST_MLFLOW_{k}") for k in ("USERNAME", "PASSWORD"))
    if not (postgres and mlflow and username and password):
        pytest.fail(
            "SWEEPLAB_TEST_POSTGRES_URL, SWEEPLAB_TEST_MLFLOW_URL and SWEEPLAB_TEST_MLFLOW_USERNAME/PASSWORD are not "
            "set: the scale-out tests need the real servers; run them with `make test`, or `.venv/bin/python "
            "tests/services.py -- .venv/bin/python -m pytest tests/scaleout`", pytrace=False,
        )
    # Workers log in to MLflow the way the runbook says (the study database's password is in PGPASSFILE), and so
    # does this process when a test reads the runs.
    credentials = {"MLFLOW_TRACKING_USERNAME": username, "MLFLOW_TRACKING_PASSWORD": password}
    saved = {key: os.environ.get(key) for key in credentials}
    os.environ.update(credentials)
    yield SimpleNamespace(postgres=postgres, mlflow=mlflow, credentials=credentials,
                          mlflow_backend=os.environ.get("SWEEPLAB_TEST_MLFLOW_BACKEND_URL"))
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def slurm(tmp_path_factory):
    """A one-node SLURM cluster (munged, slurmctld, slurmd) for this session, stopped by PID at its end."""
    missing = one_node_slurm.missing()
    if missing:
        pytest.skip(f"SLURM is not installed here ({', '.join(missing)} not found): install the Debian packages "
                    "slurm-wlm and munge (`make system-packages` does)")
    cluster = one_node_slurm.start(tmp_path_factory.mktemp("slurm"))
    yield cluster
    one_node_slurm.stop(cluster)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    return services.free_port()


class Worker:
    """One sweeping process, in its own process group so that a test can SIGKILL it with its jobs."""

    def __init__(self, argv: list[str], log: Path, env: dict):
        self.log_path = log
        with open(log, "w") as out:
            self.process = subprocess.Popen(argv, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait(self, timeout: float = 600) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"worker {self.pid} still running after {timeout} s:\n{self.log()[-3000:]}")

    def kill(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Study:
    """One study (and MLflow experiment of the same name) on the test servers, and its workers' folders."""

    def __init__(self, servers: SimpleNamespace, root: Path, label: str):
        self.servers, self.root = servers, root
        self.name = f"{label}-{uuid.uuid4().hex[:8]}"
        self.workers: list[Worker] = []
        self._storage = None

    def argv(self, worker: str, *extra: str, storage: str | None = None, tracking: str | None = None) -> list[str]:
        merged = {}  # a later override of the same key wins
        for override in [
            "hydra/sweeper=optuna", "hydra.sweeper.confirm.top_k=0", "dataset=digits", "epochs=2", "threads=1", "progress=false",
            f"hydra.sweeper.storage={storage or self.servers.postgres}", f"hydra.sweeper.study_name={self.name}",
            f"mlflow.tracking_uri={tracking or self.servers.mlflow}", f"mlflow.experiment={self.name}",
            f"hydra.sweep.dir={self.root}/{worker}", f"data_dir={self.root}/data", *extra,
        ]:
            merged[override.split("=", 1)[0]] = override
        return [sys.executable, "train.py", "-m", *merged.values()]

    def start(self, worker: str, *extra: str, env: dict | None = None) -> Worker:
        """`env` adds to the worker's environment; a variable set to None there is removed from it."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "MLFLOW_"))}
        merged = {**clean, **self.servers.credentials, **(env or {})}
        started = Worker(self.argv(worker, *extra), self.root / f"{worker}.log",
                         {k: v for k, v in merged.items() if v is not None})
        self.workers.append(started)
        return started

    def run(self, worker: str, *extra: str, timeout: float = 300, **kwargs) -> tuple[int, str]:
        started = self.start(worker, *extra, **kwargs)
        return started.wait(timeout), started.log()

    def kill_all(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.kill()

    # -- reading what the workers left -------------------------------------------------------------------------

    def storage(self) -> optuna.storages.RDBStorage:
        if self._storage is None:  # one connection pool for all of a test's reads
            url = self.servers.postgres
            self._storage = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
        return self._storage

    def study(self) -> optuna.Study:
        return optuna.load_study(study_name=self.name, storage=self.storage())

    def confirm_study(self) -> optuna.Study:
        """The search study's sibling that holds its confirmation trials."""
        return optuna.load_study(study_name=f"{self.name}.confirm", storage=self.storage())

    def exists(self) -> bool:
        return self.name in optuna.get_all_study_names(self.storage())

    def client(self) -> MlflowClient:
        return MlflowClient(self.servers.mlflow)

    def runs(self) -> list:
        client = self.client()
        experiment = client.get_experiment_by_name(self.name)
        return client.search_runs([experiment.experiment_id], max_results=1000) if experiment else []

    def wait_for(self, condition, timeout: float, what: str, poll_s: float = 0.3):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            for worker in self.workers:
                if worker.process.poll() not in (None, 0):
                    raise AssertionError(f"worker exited with {worker.process.returncode} while waiting for "
                                         f"{what}:\n{worker.log()[-3000:]}")
            time.sleep(poll_s)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def study(servers, tmp_path, request):
    made = Study(servers, tmp_path, request.node.name.removeprefix("test_").replace("_", "-")[:30])
    yield made
    made.kill_all()  # a failed test must not leave workers behind


def check_study(study, n_trials: int) -> tuple[list, dict]:
    """What every finished multi-worker study must look like; returns its finished trials and MLflow children."""
    trials = study.study().get_trials(deepcopy=False)
    finished = [t for t in trials if t.state in FINISHED]
    # The total is the study's, whichever worker ran what; a trial asked past it by a race is left WAITING.
    assert len(finished) == n_trials, [(t.number, t.state.name) for t in trials]
    assert sorted(t.number for t in finished) == list(range(n_trials))
    assert all(t.state == TrialState.WAITING for t in trials if t.number >= n_trials)
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    # Joiners reseed their sampler: no two trials proposed from the same seed.
    params = [tuple(sorted(t.params.items())) for t in finished if t.params]
    assert len(set(params)) == len(params), params

    runs = study.runs()
    parents = [r for r in runs if r.data.tags.get(KIND_TAG) == "study"]
    assert len(parents) == 1, [r.info.run_name for r in parents]
    parent = parents[0]
    children = {int(r.data.tags["optuna.trial"]): r for r in runs if r.data.tags.get(PARENT_TAG) == parent.info.run_id}
    assert len(runs) == 1 + n_trials and sorted(children) == list(range(n_trials))
    for trial in finished:
        child = children[trial.number]
        assert child.info.status != "RUNNING", (trial.number, trial.state.name)
        assert child.data.tags.get(STATE_TAG) == trial.state.name
        if trial.state == TrialState.COMPLETE:
            assert child.data.metrics["best_val_accuracy"] == pytest.approx(trial.value)
            assert child.info.status == "FINISHED"
    # Whichever worker stopped last, the parent run holds the whole study.
    states = {s: sum(t.state == s for t in finished) for s in FINISHED}
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["trials_complete"] == states[TrialState.COMPLETE]
    assert parent.data.metrics["trials_pruned"] == states[TrialState.PRUNED]
    assert parent.data.metrics["trials_fail"] == states[TrialState.FAIL]
    assert parent.data.metrics["best_val_accuracy"] == pytest.approx(study.study().best_value)
    best = int(parent.data.tags["best_trial"])  # among equal values PostgreSQL may give Optuna's best_trial any one
    assert parent.data.tags["best_child_run_id"] == children[best].info.run_id
    assert study.study().trials[best].value == pytest.approx(study.study().best_value)
    return finished, children
