"""Before the first trial: every sweep input checked, and what the sweep will do, as one typed plan."""
import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf, open_dict

from sweeplab import tracking
from sweeplab.building import build
from sweeplab.errors import ConfigError, first_line
from sweeplab.names import JOURNAL_FILE
from sweeplab.overrides import check_resolvable
from sweeplab.paths import resolve
from sweeplab.objective import Objective
from sweeplab.populations.size import auto_population
from sweeplab.settings import JobSettings
from sweeplab.sweep import question
from sweeplab.sweep.objective_check import check_sweep_objective
from sweeplab.sweep.storage import is_journal, open_storage


@dataclass(frozen=True)
class Confirmation:
    """After the search, the top_k configurations and the baseline are trained again on `seeds` fresh seeds."""

    top_k: int = 3
    seeds: int = 2

    @classmethod
    def from_config(cls, node) -> "Confirmation":
        node = node or {}
        top_k, seeds = node.get("top_k", cls.top_k), node.get("seeds", cls.seeds)
        for key, value, minimum in (("top_k", top_k, 0), ("seeds", seeds, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"hydra.sweeper.confirm.{key} must be an integer >= {minimum} (got {value!r})")
        return cls(top_k, seeds)

    @property
    def enabled(self) -> bool:
        return self.top_k > 0


@dataclass(frozen=True)
class SweepPlan:
    name: str
    objective: str  # the first objective's metric
    objectives: Objective  # every objective, its direction, and the constraints
    distributions: dict
    fixed: dict
    fixed_overrides: list
    sampler: optuna.samplers.BaseSampler
    n_trials: int  # search trials, the baseline among them
    confirm: Confirmation
    population: int  # trials trained together in one job (1 = one at a time)
    member_keys: tuple  # searched keys in which a population's members may differ (the optimizer's values)
    reserve: int  # further trials per population job, to step in where members leave
    baseline: dict | None  # the search space's values of the configuration the job runs without a sweep
    storage: optuna.storages.BaseStorage
    storage_url: str
    sweep_dir: Path
    client: object | None = field(repr=False)
    question: dict = field(default_factory=dict)  # what the study answers (see sweeplab.sweep.question)
    run_settings: dict = field(default_factory=dict)  # what may change between runs: recorded on each trial
    warm_start: str | None = None  # a study (name, or storage URL#name) whose best configurations come first

    def shared_values(self, params: dict) -> dict:
        """The values that the members of one population must share: all but the member keys."""
        return {k: v for k, v in params.items() if k not in self.member_keys}

    @property
    def storage_hint(self) -> str:
        """Where the study lives, safe to print: a journal path, never a database URL (it may hold a password)."""
        return self.storage_url if is_journal(self.storage_url) else "<storage URL>"


def make_plan(sweeper, arguments: list[str]) -> SweepPlan:
    """Check every input of the sweep (``sweeper`` is the StudySweeper: the official plugin's keys) and plan it."""
    check_counts(sweeper.n_trials, sweeper.n_jobs, sweeper.max_failure_rate)
    population = check_population(sweeper.population)
    if sweeper.custom_search_space:
        sweeper.custom_search_space_extender = import_search_space_hook(sweeper.custom_search_space)
    config = sweeper.config
    check_resolvable(config)
    distributions, fixed, fixed_overrides = search_space(sweeper, arguments)
    check_job_config(config, distributions)
    objectives = check_sweep_objective(config, sweeper.direction, sweeper.pruner_spec, population)
    fetch_data(config, distributions)
    if population == "auto":
        population = auto_population(config, largest_batch_size(config, distributions), sweeper.n_jobs,
                                     sweeper.n_trials)
    reserve = population_reserve(sweeper.population_reserve, population, sweeper.pruner_spec)
    sampler, n_trials = build_sampler(sweeper, distributions)
    check_pruner(sweeper.pruner_spec)
    sweep_dir = resolve(config.hydra.sweep.dir)
    storage_url = str(sweeper.storage) if sweeper.storage else str(sweep_dir / JOURNAL_FILE)
    storage = open_storage(storage_url)
    client = tracking.connect(config.mlflow.tracking_uri) if config.mlflow.enabled else None
    if client:
        tracking.check_can_write(client, config.mlflow.experiment)
    return SweepPlan(
        name=sweeper.study_name or f"sweep-{time.strftime('%Y%m%d-%H%M%S')}",
        objective=objectives.metric, objectives=objectives, distributions=distributions, fixed=fixed,
        fixed_overrides=fixed_overrides, sampler=sampler,
        n_trials=n_trials, confirm=Confirmation.from_config(sweeper.confirm),
        population=population, member_keys=member_keys(distributions),
        reserve=reserve,
        baseline=baseline_values(config, distributions), storage=storage, storage_url=storage_url,
        sweep_dir=sweep_dir, client=client, question=question.of(config, distributions),
        run_settings={"pruner": sweeper.pruner_spec, "sampler": type(sampler).__name__, "n_jobs": sweeper.n_jobs,
                      "population": population},
        warm_start=str(sweeper.warm_start) if sweeper.warm_start else None,
    )


def check_counts(n_trials, n_jobs, max_failure_rate) -> None:
    if not isinstance(n_trials, int) or n_trials < 1:
        raise ConfigError(f"hydra.sweeper.n_trials must be an integer >= 1 (got {n_trials!r})")
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ConfigError(f"hydra.sweeper.n_jobs must be an integer >= 1 (got {n_jobs!r})")
    if not 0 <= max_failure_rate <= 1:
        raise ConfigError(f"hydra.sweeper.max_failure_rate must be in 0..1 (got {max_failure_rate!r})")


def check_population(population) -> int | str:
    if population == "auto":
        return population
    if isinstance(population, bool) or not isinstance(population, int) or population < 1:
        raise ConfigError(f"hydra.sweeper.population must be an integer >= 1 or auto (got {population!r}); e.g. "
                          f"hydra.sweeper.population=8, auto to fill the device, or 1 to train one trial at a time")
    return population


def largest_batch_size(config: DictConfig, distributions: dict) -> int:
    """The largest batch size a trial may train with: the search space's, else the job's."""
    searched = distributions.get("batch_size")
    if searched is None:
        return int(config.batch_size)
    return int(max(getattr(searched, "choices", None) or (searched.high,)))


def population_reserve(reserve, population: int, pruner_spec) -> int:
    """Reserve trials per population job; by default (None) as many as the population where a pruner is set (pruned
    members leave the stack, and a reserve fills each place), else none (members rarely leave)."""
    if reserve is None:
        prunes = (pruner_spec or {}).get("_target_", "optuna.pruners.NopPruner") != "optuna.pruners.NopPruner"
        return population if population > 1 and prunes else 0
    if isinstance(reserve, bool) or not isinstance(reserve, int) or reserve < 0:
        raise ConfigError(f"hydra.sweeper.population_reserve must be an integer >= 0 or null (got {reserve!r}); "
                          f"e.g. hydra.sweeper.population_reserve=4, or 0 for none")
    if reserve and population == 1:
        raise ConfigError(f"hydra.sweeper.population_reserve={reserve} needs populations: set "
                          f"hydra.sweeper.population to 2 or more, or drop population_reserve")
    return reserve


def member_keys(distributions: dict) -> tuple:
    """What members of one stack may each choose: the optimizer's values. The rest (batch size, model, data,
    epochs, the optimizer's class) is shape or schedule, the same for every member of a stack."""
    return tuple(k for k in distributions if k.startswith("optimizer.") and k != "optimizer._target_")


def import_search_space_hook(name: str):
    try:
        return get_method(name)
    except Exception as error:
        raise ConfigError(
            f"hydra.sweeper.custom_search_space={name!r} cannot be imported: {first_line(error.__cause__ or error)}"
        ) from None


def search_space(sweeper, arguments: list[str]) -> tuple[dict, dict, list]:
    """The searched distributions, the fixed values and the fixed overrides (deletions), from hydra.sweeper.params
    and the command line."""
    sweeper._process_searchspace_config()
    try:
        distributions, fixed, fixed_overrides = question.parse_space(
            sweeper._parse_sweeper_params_config() + list(arguments)
        )
    except Exception as error:  # the override parser raises several kinds, all with a readable message
        raise ConfigError(f"invalid search space in hydra.sweeper.params: {first_line(error)}") from None
    if not distributions and not sweeper.custom_search_space_extender:
        raise ConfigError(
            "the search space is empty: set hydra.sweeper.params, or add one, e.g. 'batch_size=choice(32,64)'"
        )
    for name in [*distributions, *fixed]:
        if name.startswith(("+", "hydra.")) or name in ("hydra/sweeper", "hydra/launcher"):
            continue
        if "/" not in name and OmegaConf.select(sweeper.config, name, default=_Missing) is _Missing:
            raise ConfigError(f"unknown parameter {name!r} in the search space: no such key in the config")
    return distributions, fixed, fixed_overrides


def check_job_config(config: DictConfig, distributions: dict) -> None:
    """Validate the job config at every end of every searched range, before any trial runs."""
    JobSettings.from_config(config)
    for name, distribution in distributions.items():
        if isinstance(OmegaConf.select(config, name), DictConfig):
            continue  # a config group choice: Hydra itself rejects unknown options
        values = getattr(distribution, "choices", None) or (distribution.low, distribution.high)
        for value in values:
            candidate = config.copy()
            with open_dict(candidate):
                OmegaConf.update(candidate, name, value, force_add=True)
            try:
                JobSettings.from_config(candidate)
            except ConfigError as error:
                raise ConfigError(f"search space for {name} includes {value!r}: {error}") from None


def fetch_data(config: DictConfig, distributions: dict) -> None:
    """Find or download the dataset once, through its source's ``fetch``, so that a missing dataset is one line
    before the first trial rather than a failed trial each. Sources fetch files whatever the keys that only change
    how files are read; a search over which files (another dataset, another folder) is left to the trials."""
    where = ("dataset", "dataset.source", "data_dir", "extra_data_dirs", "download")
    if any(name in where or name.startswith("dataset.source.") for name in distributions):
        return
    from sweeplab.data.loading import fetch_dataset

    fetch_dataset(config, JobSettings.from_config(config))


def build_sampler(sweeper, distributions: dict) -> tuple[optuna.samplers.BaseSampler, int]:
    """The configured sampler, seeded by the job's seed unless set; a grid caps the trials at its size."""
    sampler_config = OmegaConf.to_container(sweeper.sampler_config, resolve=True)
    if "seed" in sampler_config and sampler_config["seed"] is None:
        sampler_config["seed"] = sweeper.config.seed  # seeded by default: the same sweep proposes the same trials
    n_trials = sweeper.n_trials
    try:
        sampler = build(sampler_config, key="hydra.sweeper.sampler")
        if isinstance(sampler, functools.partial):  # GridSampler: built from the search space
            grid = {name: sweeper._to_grid_sampler_choices(d) for name, d in distributions.items()}
            sampler = sampler(grid)
            n_trials = min(n_trials, math.prod(len(v) for v in grid.values()))
    except Exception as error:
        raise ConfigError(f"hydra.sweeper.sampler is invalid: {first_line(error)}") from None
    return sampler, n_trials


def check_pruner(pruner_spec) -> None:
    try:
        build(pruner_spec, key="hydra.sweeper.pruner")
    except Exception as error:
        raise ConfigError(f"hydra.sweeper.pruner is invalid: {first_line(error)}") from None


def baseline_values(config: DictConfig, distributions: dict) -> dict | None:
    """The searched keys' values in the configuration a plain `python train.py` would run, or None when one of
    them lies outside its searched range (the baseline is then not a point of the search space)."""
    values = {}
    for name, distribution in distributions.items():
        if "/" in name or isinstance(OmegaConf.select(config, name), DictConfig):
            value = OmegaConf.select(config, f"hydra.runtime.choices.{name}")  # a config group: its chosen option
        else:
            value = OmegaConf.select(config, name)
        if value is None or not contains(distribution, value):
            return None
        values[name] = value
    return values


def contains(distribution, value) -> bool:
    if isinstance(distribution, optuna.distributions.CategoricalDistribution):
        return value in distribution.choices
    try:
        return distribution.low <= float(value) <= distribution.high
    except (TypeError, ValueError):
        return False


class _Missing:
    pass
