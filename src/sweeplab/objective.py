"""What a job returns and a sweep optimises: one metric or several, each with its direction, and the constraints a
configuration must meet to count as an answer.

Two kinds of metric: those the training loop measures every epoch (training.EpochMetrics: sweeplab's own, and the
user's own declared under ``metrics:``, as ``val_<name>``, see sweeplab.metrics), taken at the best epoch (best by the
first objective), and those that sum up a whole training (its cost, see sweeplab.cost)."""
import operator
import re
from dataclasses import dataclass

from omegaconf import OmegaConf

from sweeplab.errors import ConfigError

# What the training loop measures every epoch (see training.EpochMetrics).
METRICS = ("val_accuracy", "val_loss", "train_accuracy", "train_loss")
# What one whole training costs (see sweeplab.cost): wall time, median epoch, throughput, memory, optimizer steps.
COST_METRICS = ("train_time_s", "epoch_time_s", "samples_per_s", "peak_memory_mb", "steps_per_epoch")
ALL_METRICS = METRICS + COST_METRICS
DIRECTIONS = ("maximize", "minimize")
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True)
class Constraint:
    """``metric <= limit`` or ``metric >= limit``; its value in Optuna's sense is <= 0 when met."""

    metric: str
    op: str
    limit: float

    @classmethod
    def parse(cls, text, declared: tuple = ()) -> "Constraint":
        match = _CONSTRAINT.match(str(text))
        if not match:
            raise ConfigError(f"objective.constraints: {text!r} is not '<metric><=<number>' or '<metric>>=<number>'; "
                              f"e.g. objective.constraints=['peak_memory_mb<=2000']")
        metric, op, limit = match.groups()
        _check_metric(metric, "objective.constraints", declared)
        try:
            return cls(metric, op, float(limit))
        except ValueError:
            raise ConfigError(f"objective.constraints: {limit!r} in {text!r} is not a number") from None

    @property
    def name(self) -> str:
        return f"{self.metric}{self.op}{self.limit:g}"

    def violation(self, value: float) -> float:
        """How far ``value`` lies beyond the limit (<= 0: met)."""
        return value - self.limit if self.op == "<=" else self.limit - value

    def met(self, value: float) -> bool:
        return (operator.le if self.op == "<=" else operator.ge)(value, self.limit)


@dataclass(frozen=True)
class Objective:
    metrics: tuple = ("val_accuracy",)
    directions: tuple = ("maximize",)
    constraints: tuple = ()

    @classmethod
    def from_config(cls, objective, declared: tuple = ()) -> "Objective":
        """``metrics``/``directions`` (several objectives) when set, else ``metric``/``direction`` (one); ``declared``:
        the user's metrics the job computes too (declared_metrics)."""
        several = objective.get("metrics")
        if several is not None:
            metrics = _as_list(several, "objective.metrics")
            directions = _as_list(objective.get("directions") or [], "objective.directions")
            if not metrics:
                raise ConfigError("objective.metrics is empty; e.g. objective.metrics=[val_accuracy,train_time_s]")
            if len(directions) != len(metrics):
                raise ConfigError(
                    f"objective.directions has {len(directions)} entries for {len(metrics)} objective.metrics "
                    f"({', '.join(metrics)}); give one direction per metric, e.g. "
                    f"objective.directions=[maximize,minimize]")
        else:
            metrics, directions = [str(objective.metric)], [str(objective.direction)]
        for metric in metrics:
            _check_metric(metric, "objective.metric", declared)
        for direction in directions:
            if direction not in DIRECTIONS:
                raise ConfigError(f"objective.direction={direction} must be maximize or minimize")
        if len(set(metrics)) != len(metrics):
            raise ConfigError(f"objective.metrics names a metric twice ({', '.join(metrics)})")
        constraints = tuple(Constraint.parse(c, declared) for c in _as_list(objective.get("constraints") or [],
                                                                     "objective.constraints"))
        return cls(tuple(metrics), tuple(directions), constraints)

    @property
    def metric(self) -> str:
        """The first objective: it picks the best epoch (whose weights a job keeps) and names a one-objective sweep."""
        return self.metrics[0]

    @property
    def direction(self) -> str:
        return self.directions[0]

    @property
    def several(self) -> bool:
        return len(self.metrics) > 1

    @property
    def costs(self) -> tuple:
        """The cost metrics among the objectives and constraints: what a whole training, not an epoch, measures."""
        named = [*self.metrics, *(c.metric for c in self.constraints)]
        return tuple(dict.fromkeys(m for m in named if m in COST_METRICS))

    def of(self, metrics) -> float:
        return metrics.value(self.metric)

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` beats value ``b`` (of the first objective)."""
        return a > b if self.direction == "maximize" else a < b

    def best(self, epochs: list):
        """The epoch with the best value of the first objective (the first of equals)."""
        best = epochs[0]
        for metrics in epochs[1:]:
            if self.better(self.of(metrics), self.of(best)):
                best = metrics
        return best

    def values(self, measured: dict) -> float | list[float]:
        """What the job returns: the one objective's value, or the list of them (the official plugin's convention
        for several objectives)."""
        values = [float(measured[m]) for m in self.metrics]
        return values if self.several else values[0]

    def violations(self, measured: dict) -> dict[str, float]:
        """Each constraint's value in Optuna's sense (<= 0: met), by its name."""
        return {c.name: c.violation(float(measured[c.metric])) for c in self.constraints}


def declared_metrics(cfg) -> tuple[str, ...]:
    """What a job with this config measures beyond sweeplab's own metrics: ``val_<name>`` for each of the user's
    metrics (the config's ``metrics:``, see sweeplab.metrics)."""
    node = cfg.get("metrics")
    return tuple(f"val_{name}" for name in node) if OmegaConf.is_dict(node) else ()


def summary_key(metric: str) -> str:
    """The MLflow metric that holds a job's value of ``metric``: ``best_<metric>`` for a per-epoch one, the cost's
    own name for a cost (``median_epoch_time_s`` for epoch_time_s, whose own name is the per-epoch series)."""
    if metric not in COST_METRICS:  # sweeplab's per-epoch metrics and the user's own
        return f"best_{metric}"
    return "median_epoch_time_s" if metric == "epoch_time_s" else metric


def _check_metric(metric: str, key: str, declared: tuple) -> None:
    if metric not in ALL_METRICS + tuple(declared):
        raise ConfigError(
            f"{key}={metric} is not a metric the job produces; choose one of {', '.join(ALL_METRICS + tuple(declared))}"
            f", or declare your own: +metrics.<name>={{_target_: <class or function>, ...}} makes val_<name>")


def _as_list(value, key: str) -> list[str]:
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{key} must be a list, e.g. {key}=[...] (got {value!r})")
    return [str(v) for v in value]
