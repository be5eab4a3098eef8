"""The number a job returns and a sweep optimises: one per-epoch metric, its best epoch, and which way is better."""
from dataclasses import dataclass

from sweeplab.errors import ConfigError

# What the training loop measures every epoch (see training.EpochMetrics).
METRICS = ("val_accuracy", "val_loss", "train_accuracy", "train_loss")
DIRECTIONS = ("maximize", "minimize")


@dataclass(frozen=True)
class Objective:
    metric: str = "val_accuracy"
    direction: str = "maximize"

    @classmethod
    def from_config(cls, objective) -> "Objective":
        metric, direction = str(objective.metric), str(objective.direction)
        if metric not in METRICS:
            raise ConfigError(
                f"objective.metric={metric} is not a metric the job produces; choose one of {', '.join(METRICS)}"
            )
        if direction not in DIRECTIONS:
            raise ConfigError(f"objective.direction={direction} must be maximize or minimize")
        return cls(metric, direction)

    def of(self, metrics) -> float:
        return getattr(metrics, self.metric)

    def better(self, a: float, b: float) -> bool:
        """Whether value ``a`` beats value ``b``."""
        return a > b if self.direction == "maximize" else a < b

    def best(self, epochs: list):
        """The epoch with the best value (the first of equals)."""
        best = epochs[0]
        for metrics in epochs[1:]:
            if self.better(self.of(metrics), self.of(best)):
                best = metrics
        return best
