"""Where things live. The project root is the user's project, not sweeplab's install: sweeplab.main sets it to the
folder of the script that calls it (train.py's folder); without it, the current directory. Relative paths in the
config (data_dir, the MLflow database, outputs/ and multirun/) resolve against it, not the Hydra output dir.

It travels in an environment variable so that launcher workers (joblib, SLURM) resolve the same paths."""
import os
from pathlib import Path

from omegaconf import OmegaConf

PACKAGE_CONF = Path(__file__).resolve().parent / "conf"  # sweeplab's config groups, reached as pkg://sweeplab.conf
ROOT_VARIABLE = "SWEEPLAB_PROJECT_ROOT"


def project_root() -> Path:
    return Path(os.environ.get(ROOT_VARIABLE) or os.getcwd()).resolve()


def set_project_root(path: str | Path) -> None:
    os.environ[ROOT_VARIABLE] = str(Path(path).resolve())


def resolve(path: str | Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root() / path


OmegaConf.register_resolver("project_root", lambda: str(project_root()), replace=True)
