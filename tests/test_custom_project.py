"""A user's own project on an installed sweeplab: examples/custom_project (its own train.py, conf/ and model class)
run against sweeplab built as a wheel and installed into a fresh venv, with no checkout on the path. The venv
reuses this environment's packages (torch, Hydra, MLflow...) through a .pth file, so nothing is downloaded."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.helpers import PROJECT_ROOT
from sweeplab.names import KIND_TAG, PARENT_TAG, RESULTS_FILE

pytestmark = pytest.mark.slow

EXAMPLE = PROJECT_ROOT / "examples" / "custom_project"
FAST = ("epochs=2", "threads=1", "progress=false")


@pytest.fixture(scope="session")
def wheel_venv(tmp_path_factory) -> Path:
    """sweeplab's wheel, built from a copy of the checkout and installed (no deps) into a venv; its python."""
    began = time.monotonic()
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy, so that the build leaves nothing in the checkout
    shutil.copytree(PROJECT_ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", root / "dist", source],
                   check=True, capture_output=True)
    (wheel,) = (root / "dist").glob("sweeplab-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", site, wheel], check=True,
                   capture_output=True)
    # Plain paths in a .pth: this environment's site-packages folders, without running their own .pth files (the
    # editable install's would put the checkout's src/ on the path).
    ours = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages") and Path(p) != site]
    (site / "zz_reuse_project_env.pth").write_text("".join(f"{p}\n" for p in ours))
    print(f"wheel built and installed into a venv in {time.monotonic() - began:.1f} s")
    return python


def clean_env() -> dict:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("HYDRA_", "MLFLOW_", "SWEEPLAB_"))}
    keep.pop("PYTHONPATH", None)
    return keep


def run(python: Path, project: Path, *args: str) -> subprocess.CompletedProcess:
    # From another folder: the project root is train.py's folder, not the current directory.
    return subprocess.run([python, project / "train.py", *args], cwd=project.parent, env=clean_env(),
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def project(tmp_path) -> Path:
    folder = tmp_path / "custom_project"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("outputs", "multirun", "mlflow.db*", "mlruns",
                                                                  "__pycache__"))
    return folder


def test_sweeplab_comes_from_the_wheel(wheel_venv):
    result = subprocess.run([wheel_venv, "-c", "import sweeplab, sweeplab.conf; print(sweeplab.__file__)"],
                            env=clean_env(), capture_output=True, text=True, check=True)
    location = Path(result.stdout.strip())
    assert location.is_relative_to(wheel_venv.parent.parent), location
    assert (location.parent / "conf" / "dataset" / "digits.yaml").is_file()  # the configs ship as package data


def test_single_job_with_the_projects_model(wheel_venv, project):
    """With the example's own defaults (10 epochs): the accuracy its README promises, in seconds."""
    began = time.monotonic()
    result = run(wheel_venv, project, "progress=false")
    print(f"custom_project's default job: {time.monotonic() - began:.1f} s")
    assert result.returncode == 0, result.stderr[-3000:]
    (output,) = project.glob("outputs/*/*")
    config = yaml.safe_load((output / ".hydra" / "config.yaml").read_text())
    assert config["model"]["_target_"] == "models.SmallCNN" and config["dataset"]["name"] == "digits"
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    experiment = client.get_experiment_by_name("custom_project")
    (run_,) = client.search_runs([experiment.experiment_id])
    assert run_.info.status == "FINISHED"
    assert run_.data.metrics["best_val_accuracy"] >= 0.90 and run_.data.metrics["test_accuracy"] >= 0.90
    # the project's own metrics (metrics.py): every epoch on validation, once on test
    assert len(client.get_metric_history(run_.info.run_id, "val_worst_class")) == 10
    assert run_.data.metrics["test_worst_class"] <= run_.data.metrics["test_accuracy"]
    assert run_.data.metrics["test_accuracy"] <= run_.data.metrics["test_recall_at_3"] <= 1


def test_optuna_sweep_with_parent_and_child_runs(wheel_venv, project):
    result = run(wheel_venv, project, "-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    (study_dir,) = (project / "multirun").glob("digits-small_cnn-adam-2ep-*")
    results = yaml.safe_load((study_dir / RESULTS_FILE).read_text())
    assert results["name"] == "optuna" and set(results["best_params"]) == {"batch_size", "optimizer.lr"}
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("custom_project").experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get(KIND_TAG) == "study"]
    children = [r for r in runs if r.data.tags.get(PARENT_TAG) == parent.info.run_id]
    # 2 search trials (the study's), then the confirmation's (its sibling's): every trial is a child of the one parent
    assert results["trials"]["complete"] == 2 and "confirmed" in results
    assert parent.info.status == "FINISHED" and len(children) > 2 and len(children) == len(runs) - 1
