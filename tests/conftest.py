"""Shared fixtures: synthetic MNIST files in the real idx format, a private workspace per test (output folder,
data folder, MLflow database), Hydra composition and `train.py` as a subprocess. Nothing touches the network."""
import gzip
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import hydra
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from sweeplab.cli import register_configs
from sweeplab.paths import set_project_root

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the checkout: train.py and its conf/
CONF_DIR = PROJECT_ROOT / "conf"

MNIST_FILES = {  # torchvision's file names -> which split and part they hold
    "train-images-idx3-ubyte": ("train", 0), "train-labels-idx1-ubyte": ("train", 1),
    "t10k-images-idx3-ubyte": ("test", 0), "t10k-labels-idx1-ubyte": ("test", 1),
}


def synthetic_split(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28×28 uint8 noise with a bright bar whose row encodes the label: learnable, but not trivially."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count).astype(np.uint8)
    images = rng.integers(0, 80, (count, 28, 28)).astype(np.uint8)
    for image, label in zip(images, labels):
        image[2 + 2 * label : 4 + 2 * label, 4:24] = rng.integers(180, 256)
    return images, labels


def write_mnist(folder: Path, seed: int = 0, gz: bool = True, train: int = 600, test: int = 100) -> dict:
    """Write the four MNIST files (idx format: magic 2051 for images, 2049 for labels, big-endian sizes)."""
    folder.mkdir(parents=True, exist_ok=True)
    splits = {"train": synthetic_split(train, seed), "test": synthetic_split(test, seed + 1000)}
    for name, (split, part) in MNIST_FILES.items():
        array = splits[split][part]
        header = struct.pack(">iiii", 2051, *array.shape) if part == 0 else struct.pack(">ii", 2049, len(array))
        opener = gzip.open if gz else open
        with opener(folder / (f"{name}.gz" if gz else name), "wb") as file:
            file.write(header + array.tobytes())
    return splits


@pytest.fixture(scope="session")
def synthetic_mnist(tmp_path_factory) -> SimpleNamespace:
    """A folder holding synthetic MNIST as four *-ubyte.gz files (600 train / 100 test images)."""
    folder = tmp_path_factory.mktemp("mnist-gz")
    splits = write_mnist(folder)
    return SimpleNamespace(dir=folder, train=splits["train"], test=splits["test"])


def mnist_overrides(synthetic_mnist) -> list[str]:
    """Train on the synthetic files through torchvision's MNIST parser; never download."""
    return ["dataset=mnist", f"extra_data_dirs=[{synthetic_mnist.dir}]", "download=false", "val_size=100"]


def compose(*overrides: str):
    """The checkout app's config, as `train.py` composes it (sweeplab's sweeper configs, project root)."""
    register_configs()
    set_project_root(PROJECT_ROOT)
    with hydra.initialize_config_dir(config_dir=str(CONF_DIR)):
        return hydra.compose("config", overrides=list(overrides))


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Path:
    """An empty, migrated MLflow database: copying it is much faster than letting every run create one."""
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


class Workspace:
    """One test's folders and MLflow store, and the overrides that point a job at them."""

    def __init__(self, root: Path, template: Path):
        self.root, self.out = root, root / "out"
        shutil.copy(template, root / "mlflow.db")
        self.uri = f"sqlite:///{root}/mlflow.db"

    def overrides(self, *extra: str) -> list[str]:
        merged = {}  # later overrides of the same key win
        for override in [
            "dataset=digits", "epochs=2", "threads=1", "progress=false", f"data_dir={self.root}/data",
            f"mlflow.tracking_uri={self.uri}", f"mlflow.artifact_location={self.root}/mlruns",
            f"hydra.run.dir={self.out}", f"hydra.sweep.dir={self.root}/multirun", *extra,
        ]:
            merged[override.split("=", 1)[0]] = override
        return list(merged.values())

    def compose(self, *extra: str):
        return compose(*(o for o in self.overrides(*extra) if not o.startswith("hydra.")))

    def train(self, *extra: str, multirun: bool = False) -> subprocess.CompletedProcess:
        return run_python("train.py", *(["-m"] if multirun else []), *self.overrides(*extra))

    def client(self) -> MlflowClient:
        return MlflowClient(self.uri)

    def runs(self) -> list:
        client = self.client()
        return client.search_runs([e.experiment_id for e in client.search_experiments()])


@pytest.fixture
def workspace(tmp_path, mlflow_template) -> Workspace:
    return Workspace(tmp_path, mlflow_template)


def run_python(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "MLFLOW_"))}
    return subprocess.run(
        [sys.executable, *args], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, mlflow_template) -> SimpleNamespace:
    """One finished digits job (3 epochs) run through `train.py`, shared by the tracking and predict tests."""
    space = Workspace(tmp_path_factory.mktemp("finished-run"), mlflow_template)
    result = space.train("epochs=3")
    assert result.returncode == 0, result.stderr
    (run,) = space.runs()
    return SimpleNamespace(space=space, run=run, stdout=result.stdout)
