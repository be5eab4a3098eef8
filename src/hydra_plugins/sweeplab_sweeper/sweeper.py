import sys
from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from . import config as config  # noqa: F401  (registers the configs)


class SweeplabOptunaSweeper(Sweeper):
    """The official Optuna sweeper's keys, plus pruning, resume, confirmation and MLflow parent runs (see
    sweeplab.sweep). The command-line edge of a sweep: its errors end here, in one line and an exit code."""

    def __init__(self, sampler: Any, pruner: Any, confirm: Any = None, **kwargs: Any) -> None:
        from sweeplab.sweep.sweeper import StudySweeper  # heavy imports only when a sweep runs

        pruner_spec = OmegaConf.to_container(pruner, resolve=True) if pruner is not None else None
        confirm = OmegaConf.to_container(confirm, resolve=True) if confirm is not None else None
        self.sweeper = StudySweeper(sampler=sampler, pruner_spec=pruner_spec, confirm=confirm, **kwargs)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        from sweeplab.errors import SweeplabError
        from sweeplab.paths import resolve
        from sweeplab.sweep.sweeper import SweepFailed

        try:
            self.sweeper.run(arguments)
        except SweepFailed as error:
            sys.stderr.write(f"error: {error}\n")
            sys.exit(1)
        except SweeplabError as error:  # bad input, found before the first trial
            _remove_if_empty(resolve(self.sweeper.config.hydra.sweep.dir))  # Hydra made it for this sweep
            sys.stderr.write(f"error: {error}\n")
            sys.exit(2)


def _remove_if_empty(folder) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # a study lives there already (or the folder is gone)
