"""`hydra/sweeper=optuna` for sweeplab apps: the official plugin's config, extended with pruners and sweeplab's
defaults, and the Sweeper class Hydra instantiates from it.

Nothing here is found by Hydra's plugin scan: `register()` runs from sweeplab's own entry point (sweeplab.main),
so that other Hydra apps in the same environment keep the official `hydra/sweeper=optuna` untouched.
"""
import sys
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_optuna_sweeper.config import OptunaSweeperConf, TPESamplerConfig
from omegaconf import MISSING, DictConfig, OmegaConf

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
class GPThenTPESamplerConf:
    """GPSampler for the first gp_trials trials, then multivariate TPE with the constant liar (see
    sweeplab.sweep.scaling_sampler): GP's choices where a study is small, milliseconds per ask where it is large."""
    _target_: str = "sweeplab.sweep.scaling_sampler.GPThenTPESampler"
    seed: int | None = None  # null: the job's seed
    gp_trials: int = 50  # trials numbered below this ask the GP; docs/benchmarks.md, "A sampler that scales"
    n_startup_trials: int = 10  # random trials before either model
    constraints_func: Any | None = None


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
class ConfirmConf:
    # After the search, the top_k configurations and the baseline train again on `seeds` fresh seeds each (new
    # initial weights and batch order, the same validation split); top_k=0 switches it off.
    top_k: int = 3
    seeds: int = 2


@dataclass
class SweeplabOptunaSweeperConf(OptunaSweeperConf):
    _target_: str = "sweeplab.sweep.plugin.SweeplabOptunaSweeper"
    # GP while the study is small (measured best on this space: docs/benchmarks.md, "Choosing the sampler"), then
    # multivariate TPE with the constant liar, whose asks stay cheap at thousands of trials ("A sampler that scales").
    # `hydra/sweeper/sampler=gp` or `=tpe` keep one sampler throughout.
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "gp_then_tpe"}, {"pruner": "none"}])
    # The app's objective decides: its direction, or its list of directions (several objectives).
    direction: Any = "${sweeplab_directions:${oc.select:objective.directions,null},${objective.direction}}"
    # Same command, same study: re-running it resumes the study instead of starting another. The last part is a
    # short hash of the question (search space and the settings that change the objective, sweeplab.sweep.question):
    # a changed question is a new study.
    study_name: str | None = (
        "${hydra:runtime.choices.dataset}-${hydra:runtime.choices.model}-${hydra:runtime.choices.optimizer}-${epochs}ep"
        "-${sweeplab_question_hash:}"
    )
    # null = a journal file in the sweep directory (safe for parallel writers on one machine);
    # postgresql://user@host/db to share the study between machines.
    storage: Any | None = None
    n_trials: int = 25  # the search's total (then confirmation): a resumed study runs only what is missing
    n_jobs: int = 1  # trials launched together; the launcher decides whether they run in parallel
    # Stop the sweep once more than this fraction of n_trials has failed.
    max_failure_rate: float = 0.5
    params: dict[str, str] | None = field(default_factory=lambda: dict(DEFAULT_SEARCH_SPACE))
    pruner: Any = MISSING
    confirm: ConfirmConf = field(default_factory=ConfirmConf)
    # Trials trained together as one stacked model in one job (same batch size and model, each its own optimizer
    # values, weights and batch order): several times the throughput for small models. 1 = one trial per job;
    # auto = as many as fill the GPU's free memory (sweeplab.populations.size), 4 on a CPU.
    population: Any = 1
    # Reserve trials per population job: each steps into the stack where a member has left (pruned, failed or
    # finished), so the stack stays full. null: as many as the population where a pruner is set, else none.
    population_reserve: int | None = None
    # A study whose confirmed best and top configurations this new study tries first: its name in this storage, or
    # <storage URL>#<name>. Raise n_trials to extend a study; warm-start a new one when the question changes.
    warm_start: str | None = None


class SweeplabOptunaSweeper(Sweeper):
    """The official Optuna sweeper's keys, plus pruning, resume, confirmation and MLflow parent runs (see
    sweeplab.sweep). The command-line edge of a sweep: its errors end here, in one line and an exit code."""

    def __init__(self, sampler: Any, pruner: Any, confirm: Any = None, population: Any = 1,
                 population_reserve: Any = None, **kwargs: Any) -> None:
        from sweeplab.sweep.sweeper import StudySweeper  # heavy imports only when a sweep runs

        pruner_spec = OmegaConf.to_container(pruner, resolve=True) if pruner is not None else None
        confirm = OmegaConf.to_container(confirm, resolve=True) if confirm is not None else None
        self.sweeper = StudySweeper(sampler=sampler, pruner_spec=pruner_spec, confirm=confirm, population=population,
                                    population_reserve=population_reserve, **kwargs)

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
    """The sweep's folder, and the default `multirun/` above it, when this failed sweep was all they held (an empty
    journal that opening the study's storage made, included)."""
    from sweeplab.names import JOURNAL_FILE

    journal = folder / JOURNAL_FILE
    if journal.is_file() and journal.stat().st_size == 0:
        journal.unlink()
    for path in (folder, folder.parent if folder.parent.name == "multirun" else None):
        try:
            if path is not None:
                path.rmdir()
        except OSError:
            return  # a study lives there already (or the folder is gone)


PRUNERS = {
    "none": NopPrunerConf,
    "median": MedianPrunerConf,
    "successive_halving": SuccessiveHalvingPrunerConf,
    "hyperband": HyperbandPrunerConf,
}


def register() -> None:
    """Make `hydra/sweeper=optuna` sweeplab's sweeper in this process only.

    The official config module registers its nodes when imported; it is imported (once, as Python caches modules,
    so the plugin scan does not run it again) before ours replace its `optuna` and `tpe` nodes."""
    import hydra_plugins.hydra_optuna_sweeper.config  # noqa: F401

    store = ConfigStore.instance()
    store.store(group="hydra/sweeper", name="optuna", node=SweeplabOptunaSweeperConf, provider="sweeplab",
                replace=True)
    store.store(group="hydra/sweeper/sampler", name="tpe", node=SweeplabTPESamplerConf, provider="sweeplab",
                replace=True)
    store.store(group="hydra/sweeper/sampler", name="gp_then_tpe", node=GPThenTPESamplerConf, provider="sweeplab",
                replace=True)
    for name, node in PRUNERS.items():
        store.store(group="hydra/sweeper/pruner", name=name, node=node, provider="sweeplab", replace=True)
    Plugins.instance().register(SweeplabOptunaSweeper)  # Hydra instantiates only the plugin classes it knows
