"""The Hydra edge: compose the config, run the job, report user errors in one line."""
import gc
import os
import re
import shutil
import sys
import warnings
from pathlib import Path

import hydra
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sweeplab.errors import SweeplabError
from sweeplab.paths import CONF_DIR


def task(cfg: DictConfig) -> float:
    start_up = _pause_collector_for_start_up()
    from sweeplab.settings import JobSettings  # imported here so that `--help` and `--cfg` stay fast

    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        JobSettings.from_config(cfg)  # bad values fail before the slow imports (MLflow, Optuna) below
        from sweeplab.job import run_job
        from sweeplab.labels import RunLabels

        objective = run_job(cfg, output_dir, RunLabels.from_hydra(hydra_cfg), _trial_link(cfg.trial))
        if start_up:
            gc.freeze()  # what start-up loaded lives as long as the process: keep the collector off it for good
        return objective
    except SweeplabError as error:
        if cfg.trial.trial_id is not None:
            raise  # inside an Optuna trial: the sweeper records it as FAIL and goes on
        _discard(output_dir)
        sys.stderr.write(f"error: {error}\n")
        sys.exit(2)
    finally:
        gc.enable()


def _trial_link(trial_cfg):
    """The link to this job's Optuna trial, or None; Optuna (~0.5 s of imports) loads only inside a trial."""
    if trial_cfg.get("trial_id") is None:
        return None
    from sweeplab.sweep.trial_link import TrialLink

    return TrialLink.from_config(trial_cfg)


def _pause_collector_for_start_up() -> bool:
    """The first job in a process loads torch, MLflow and the rest: ~500 000 objects that live as long as the process.
    Collecting cycles while they load, and again over all of them afterwards, costs about a third of a short job's CPU
    (train.py pauses the collector from its first line). Later jobs of an in-process sweep run with it as usual."""
    if gc.isenabled() and "sweeplab.job" in sys.modules:
        return False
    gc.disable()
    return True


def _discard(output_dir: Path) -> None:
    """Remove the job's half-written output folder, and its date folder if that is left empty."""
    shutil.rmtree(output_dir, ignore_errors=True)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", output_dir.parent.name):  # never a folder the user named
        try:
            output_dir.parent.rmdir()
        except OSError:
            pass


class CheckOutputDir(Callback):
    """An output folder that cannot be created fails in one line here, not in a traceback from Hydra."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        _check_writable(Path(config.hydra.run.dir), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        _check_writable(Path(config.hydra.sweep.dir), "hydra.sweep.dir")


def _check_writable(path: Path, key: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        problem = None if os.access(path, os.W_OK) else "not writable"
    except OSError as error:
        problem = error.strerror
    if problem:
        sys.stderr.write(f"error: cannot write output directory {path} ({problem}); set {key}=<a writable folder>\n")
        raise SystemExit(2)  # a BaseException: Hydra's callback runner lets it through


def _whole_config_for_hydra_node(argv: list[str], package: str | None) -> list[str]:
    """`--cfg hydra --resolve` resolves the hydra node after Hydra has dropped the job's keys, so the values built
    from them (the study name, the sweep folder) cannot resolve. `--cfg all -p hydra` shows the same node, resolved
    within the whole config."""
    rewritten = []
    for i, arg in enumerate(argv):
        if arg in ("--cfg=hydra", "-chydra"):
            arg = arg[:-len("hydra")] + "all"
        elif arg == "hydra" and i and argv[i - 1] in ("--cfg", "-c"):
            arg = "all"
        rewritten.append(arg)
    return rewritten + (["--package", "hydra"] if package in (None, "_global_") else [])


def main() -> None:
    # Hydra instantiates config callbacks without an execution whitelist; ours is trusted code.
    warnings.filterwarnings("ignore", r"hydra\.utils\.instantiate\(\) resolved _target_='sweeplab\.cli\.")
    args = get_args_parser().parse_args()
    if args.run + args.multirun + (args.cfg is not None) + (args.info is not None) + args.shell_completion > 1:
        sys.stderr.write("error: use only one of --run, --multirun (-m), --cfg, --info, --shell-completion; "
                         "e.g. `python train.py hydra/sweeper=optuna --cfg hydra` to see a sweep's config\n")
        sys.exit(2)
    if args.cfg == "hydra" and args.resolve:
        sys.argv = _whole_config_for_hydra_node(sys.argv, args.package)
    if args.overrides:
        from sweeplab.overrides import check_overrides

        try:
            check_overrides(str(CONF_DIR), args.overrides)
        except SweeplabError as error:
            sys.stderr.write(f"error: {error}\n")
            sys.exit(2)
    hydra.main(config_path=str(CONF_DIR), config_name="config")(task)()
