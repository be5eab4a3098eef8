"""Sweep helpers: `train.py -m hydra/sweeper=optuna` on the bundled digits data (no download), each sweep in its own
folder with its own journal and MLflow database, and readers for what a sweep leaves behind (the Optuna study,
the MLflow parent and child runs, the job folders).

Sweeps cost tens of seconds each on this machine, so the test modules share one sweep among several tests through
module-scoped fixtures. Shared helpers (waiting, killing, one error line) are in tests/helpers.py.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from sweeplab.names import CONFIRM_SUFFIX, JOURNAL_FILE, KIND_TAG, PARENT_TAG
from tests.helpers import PROJECT_ROOT, clean_env

# Fast, offline and single-threaded: digits ships with scikit-learn, 2 epochs take well under a second.
BASE_OVERRIDES = ("dataset=digits", "epochs=2", "threads=1", "progress=false")
# The search alone unless a test asks for confirmation (its own tests are in test_confirmation.py).
OPTUNA_OVERRIDES = ("hydra/sweeper=optuna", "hydra.sweeper.confirm.top_k=0")


class Sweep:
    """One sweep's private folder: sweep dir (journal + job dirs), MLflow database and artifact root."""

    def __init__(self, root: Path, mlflow_template: Path):
        self.root = root
        self.dir = root / "sweep"
        self.journal = self.dir / JOURNAL_FILE
        shutil.copy(mlflow_template, root / "mlflow.db")
        self.uri = f"sqlite:///{root}/mlflow.db"

    # -- running ---------------------------------------------------------------------------------------------

    def argv(self, *extra: str, optuna_sweeper: bool = True, without: tuple[str, ...] = ()) -> list[str]:
        """`train.py -m ...` for this folder; a later override of a key wins, keys in ``without`` are left out."""
        merged = {}
        for override in [
            *(OPTUNA_OVERRIDES if optuna_sweeper else ()), *BASE_OVERRIDES,
            f"hydra.sweep.dir={self.dir}", f"mlflow.tracking_uri={self.uri}",
            f"mlflow.artifact_location={self.root}/mlruns", *extra,
        ]:
            merged[override.split("=", 1)[0]] = override
        return ["train.py", "-m", *(o for k, o in merged.items() if k not in without)]

    def run(self, *extra: str, optuna_sweeper: bool = True, without: tuple[str, ...] = (),
            timeout: int = 600) -> tuple[int, str, str]:
        result = subprocess.run(
            [sys.executable, *self.argv(*extra, optuna_sweeper=optuna_sweeper, without=without)], cwd=PROJECT_ROOT,
            env=clean_env(), capture_output=True, text=True, timeout=timeout,
        )
        return result.returncode, result.stdout, result.stderr

    def start(self, *extra: str) -> subprocess.Popen:
        """Start a sweep in its own process group (so a test can SIGKILL the sweeper and its jobs together)."""
        with open(self.root / "started-sweep.log", "w") as log:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(
                [sys.executable, *self.argv(*extra)], cwd=PROJECT_ROOT, env=clean_env(), stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    # -- reading what it left ----------------------------------------------------------------------------------

    def storage(self) -> JournalStorage:
        return JournalStorage(JournalFileBackend(str(self.journal)))

    def study(self, name: str | None = None) -> optuna.Study:
        """The search study (each test sweep holds one, and perhaps its sibling `<name>.confirm`)."""
        storage = self.storage()
        if name is None:
            (name,) = [n for n in optuna.get_all_study_names(storage) if not n.endswith(CONFIRM_SUFFIX)]
        return optuna.load_study(study_name=name, storage=storage)

    def confirm_study(self, name: str | None = None) -> optuna.Study:
        """The study that holds the search study's confirmation trials."""
        return optuna.load_study(study_name=self.study(name).study_name + CONFIRM_SUFFIX, storage=self.storage())

    def job_dirs(self) -> list[Path]:
        return sorted((p for p in self.dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))

    def client(self) -> MlflowClient:
        return MlflowClient(self.uri)

    def runs(self) -> list:
        client = self.client()
        return client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000)

    def parents(self) -> list:
        return [r for r in self.runs() if r.data.tags.get(KIND_TAG) == "study"]

    def children(self, parent_id: str) -> list:
        return [r for r in self.runs() if r.data.tags.get(PARENT_TAG) == parent_id]

    def child_by_trial(self, parent_id: str, study: str | None = None) -> dict[int, object]:
        """The child runs by trial number, of the search study's trials (or of ``study``'s)."""
        study = study or self.study().study_name
        return {int(r.data.tags["optuna.trial"]): r for r in self.children(parent_id)
                if r.data.tags.get("optuna.study") == study}


@pytest.fixture(scope="session")
def new_sweep(tmp_path_factory, mlflow_template):
    """A factory: ``new_sweep("name")`` -> a fresh Sweep folder (usable from module-scoped fixtures)."""
    return lambda name: Sweep(tmp_path_factory.mktemp(name), mlflow_template)
