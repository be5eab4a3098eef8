"""Helpers every test module shares (fixtures live in the conftest files): the project's paths, synthetic MNIST
in the real idx format, Hydra composition as train.py does it, subprocesses with a clean environment, one test's
private workspace, and waiting for what another process does."""
import gzip
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import hydra
import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from sweeplab.cli import register_configs
from sweeplab.data.source import DataPlaces
from sweeplab.paths import set_project_root

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the checkout: train.py and its conf/
CONF_DIR = PROJECT_ROOT / "conf"
FSDD = PROJECT_ROOT.parent / "shared" / "data" / "fsdd"  # the offline spoken digits; CI clones with shared/ beside
needs_fsdd = pytest.mark.skipif(not (FSDD / "recordings").is_dir(), reason=f"no FSDD copy in {FSDD}")


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


def mnist_overrides(synthetic_mnist) -> list[str]:
    """Train on the synthetic files through torchvision's MNIST parser; never download."""
    return ["dataset=mnist", f"extra_data_dirs=[{synthetic_mnist.dir}]", "download=false", "val_size=100"]


def compose(*overrides: str):
    """The checkout app's config, as `train.py` composes it (sweeplab's sweeper configs, project root)."""
    register_configs()
    set_project_root(PROJECT_ROOT)
    with hydra.initialize_config_dir(config_dir=str(CONF_DIR)):
        return hydra.compose("config", overrides=list(overrides))


def clean_env() -> dict:
    """No inherited Hydra or MLflow settings (e.g. MLFLOW_RUN_ID) may leak into the process under test."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "MLFLOW_"))}


def run_python(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=PROJECT_ROOT, env=clean_env(), capture_output=True, text=True, timeout=timeout
    )


def migrated_mlflow_db(path: Path) -> Path:
    """An empty, migrated MLflow database: copying it is much faster than letting every run create one."""
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


def one_error_line(stderr: str) -> str:
    """The sweep's last stderr line, which must be the one `error:` line; no traceback anywhere."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    assert lines[-1].startswith("error: "), stderr
    assert sum(line.startswith("error:") for line in lines) == 1, stderr
    return lines[-1]


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition",
             process: subprocess.Popen | None = None):
    """The predicate's first true value; fails on the timeout, or at once when ``process`` (which should make it
    true) has exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process exited ({process.returncode}) before {what}")
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


def small_fsdd_copy(folder: Path, speakers=("george", "theo"), takes=range(0, 8)) -> Path:
    """A few real recordings (every digit, the given speakers and takes) copied into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for digit in range(10):
        for speaker in speakers:
            for take in takes:
                name = f"{digit}_{speaker}_{take}.wav"
                shutil.copy(FSDD / "recordings" / name, folder / name)
    return folder


def offline_places(tmp_path: Path, *extra_dirs: Path) -> DataPlaces:
    return DataPlaces(tmp_path / "data", tuple(extra_dirs), download=False)


def job_link(folder: Path) -> dict:
    """A sweep job's link to its trial(s), as the sweeper passed it: in the job's environment (hydra.job.env_set)."""
    from sweeplab.names import TRIAL_ENV

    hydra_cfg = yaml.safe_load((folder / ".hydra" / "hydra.yaml").read_text())["hydra"]
    return json.loads(hydra_cfg["job"]["env_set"][TRIAL_ENV])
