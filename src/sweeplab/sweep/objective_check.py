"""A sweep's objective(s), checked against the rest of the sweep before the first trial: the official
`hydra.sweeper.direction` must agree with them, Optuna cannot prune a study of several objectives, and the costs of a
population's stacked members are the stack's, not their own."""
from omegaconf import OmegaConf

from sweeplab.errors import ConfigError
from sweeplab.objective import Objective, declared_metrics

NO_PRUNER = "optuna.pruners.NopPruner"


def check_sweep_objective(config, direction, pruner_spec, population: int) -> Objective:
    """The job's objective(s), once every check passed; ``direction`` is hydra.sweeper.direction as configured."""
    objective = Objective.from_config(config.objective, declared_metrics(config))
    directions = _directions(direction)
    if len(directions) != len(objective.metrics):
        raise ConfigError(
            f"hydra.sweeper.direction has {len(directions)} direction(s) ({', '.join(directions)}) for "
            f"{len(objective.metrics)} objective(s) ({', '.join(objective.metrics)}); name the metrics with "
            f"objective.metrics=[...] and objective.directions=[...] (or objective=accuracy_vs_time), and leave "
            f"hydra.sweeper.direction unset or equal to them")
    for metric, ours, theirs in zip(objective.metrics, objective.directions, directions):
        if ours != theirs:
            raise ConfigError(f"hydra.sweeper.direction says {theirs} for {metric}, objective.directions says {ours}; "
                              f"make them agree (or leave hydra.sweeper.direction unset: it follows the objective)")
    pruner = (pruner_spec or {}).get("_target_", NO_PRUNER)
    if objective.several and pruner != NO_PRUNER:
        raise ConfigError(f"hydra.sweeper.pruner={pruner.rsplit('.', 1)[-1]} cannot prune a study of several "
                          f"objectives (Optuna prunes on one value); use hydra/sweeper/pruner=none")
    if population > 1 and objective.costs:
        raise ConfigError(
            f"objective {', '.join(objective.costs)} with hydra.sweeper.population={population}: a stack's members "
            f"share one training, so its time and memory are the stack's, not each member's; use "
            f"hydra.sweeper.population=1 to measure each trial's own cost")
    return objective


def _directions(direction) -> list[str]:
    if OmegaConf.is_config(direction):
        direction = OmegaConf.to_container(direction, resolve=True)
    names = direction if isinstance(direction, (list, tuple)) else [direction]
    names = [getattr(d, "name", d) for d in names]  # optuna's StudyDirection, as the official plugin allows
    for name in names:
        if str(name).lower() not in ("maximize", "minimize"):
            raise ConfigError(f"hydra.sweeper.direction={name} must be maximize or minimize (or a list of them)")
    return [str(n).lower() for n in names]
