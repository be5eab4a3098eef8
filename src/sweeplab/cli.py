"""The Hydra edge: compose the config, run the job, report user errors in one line."""
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from sweeplab.errors import SweeplabError
from sweeplab.paths import CONF_DIR


def task(cfg: DictConfig) -> float:
    from sweeplab.job import run_job  # imported here so that `--help` and `--cfg` stay fast

    output_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        return run_job(cfg, output_dir)
    except SweeplabError as error:
        if cfg.trial.trial_id is not None:
            raise  # inside an Optuna trial: the sweeper records it as FAIL and goes on
        _discard(output_dir)
        sys.stderr.write(f"error: {error}\n")
        sys.exit(2)


def _discard(output_dir: Path) -> None:
    """Remove the job's half-written output folder, and its date folder if that is left empty."""
    shutil.rmtree(output_dir, ignore_errors=True)
    try:
        output_dir.parent.rmdir()
    except OSError:
        pass


def main() -> None:
    hydra.main(config_path=str(CONF_DIR), config_name="config")(task)()
