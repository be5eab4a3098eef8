from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from . import config as config  # noqa: F401  (registers the configs)


class SweeplabOptunaSweeper(Sweeper):
    """The official Optuna sweeper's keys, plus pruning, resume and MLflow parent runs (see sweeplab.sweep)."""

    def __init__(self, sampler: Any, pruner: Any, **kwargs: Any) -> None:
        from sweeplab.sweep.sweeper import StudySweeper  # heavy imports only when a sweep runs

        pruner_spec = OmegaConf.to_container(pruner, resolve=True) if pruner is not None else None
        self.sweeper = StudySweeper(sampler=sampler, pruner_spec=pruner_spec, **kwargs)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        return self.sweeper.sweep(arguments)
