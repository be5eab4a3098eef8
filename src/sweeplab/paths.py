"""Where the project lives: relative paths in the config resolve against it, not the Hydra output dir."""
from pathlib import Path

from omegaconf import OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = PROJECT_ROOT / "conf"


def resolve(path: str | Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def _project_root() -> str:
    return str(PROJECT_ROOT)


OmegaConf.register_resolver("project_root", _project_root, replace=True)
