"""`hydra/sweeper=optuna` for sweeplab: the official plugin's config, extended with pruners and sweeplab's defaults.

Importing the official config first registers its nodes; ours then replaces its `optuna` node under the same name,
so the user-facing command and every official key stay as documented for hydra-optuna-sweeper.
"""
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING
from hydra_plugins.hydra_optuna_sweeper.config import Direction, OptunaSweeperConf, TPESamplerConfig

# The notes' guidance: batch sizes in powers of two, and a learning rate searched on a log scale.
DEFAULT_SEARCH_SPACE = {
    "batch_size": "choice(16, 32, 64, 128, 256, 512)",
    "optimizer.lr": "tag(log, interval(1e-4, 1e-1))",
}


@dataclass
class SweeplabTPESamplerConf(TPESamplerConfig):
    # Batch size and learning rate interact (a larger batch wants a larger step): model them jointly.
    multivariate: bool = True
    # Trials that run at the same time (n_jobs, several workers) are proposed apart, not alike.
    constant_liar: bool = True


@dataclass
class NopPrunerConf:
    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConf:
    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5
    n_warmup_steps: int = 1
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class SuccessiveHalvingPrunerConf:
    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = 1
    reduction_factor: int = 3
    min_early_stopping_rate: int = 0
    bootstrap_count: int = 0


@dataclass
class HyperbandPrunerConf:
    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "${epochs}"
    reduction_factor: int = 3


@dataclass
class SweeplabOptunaSweeperConf(OptunaSweeperConf):
    _target_: str = "hydra_plugins.sweeplab_sweeper.sweeper.SweeplabOptunaSweeper"
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}])
    direction: Any = Direction.maximize
    # Same command, same study: re-running it resumes the study instead of starting another.
    study_name: str | None = "${dataset.name}-${hydra:runtime.choices.model}-${hydra:runtime.choices.optimizer}-${epochs}ep"
    # null = a journal file in the sweep directory (safe for parallel writers on one machine);
    # postgresql://user@host/db to share the study between machines.
    storage: Any | None = None
    n_trials: int = 20  # the study's total: a resumed study runs only what is missing
    n_jobs: int = 1  # trials launched together; the launcher decides whether they run in parallel
    # Stop the sweep once more than this fraction of n_trials has failed.
    max_failure_rate: float = 0.5
    params: dict[str, str] | None = field(default_factory=lambda: dict(DEFAULT_SEARCH_SPACE))
    pruner: Any = MISSING


store = ConfigStore.instance()
store.store(group="hydra/sweeper", name="optuna", node=SweeplabOptunaSweeperConf, provider="sweeplab", replace=True)
store.store(group="hydra/sweeper/sampler", name="tpe", node=SweeplabTPESamplerConf, provider="sweeplab", replace=True)
for name, node in {
    "none": NopPrunerConf,
    "median": MedianPrunerConf,
    "successive_halving": SuccessiveHalvingPrunerConf,
    "hyperband": HyperbandPrunerConf,
}.items():
    store.store(group="hydra/sweeper/pruner", name=name, node=node, provider="sweeplab")
