"""Readable names for runs and tags, from the config options a job was composed of (``hydra:runtime.choices``)
and, in a sweep, the values that vary between its jobs — never from a key one model has and another lacks."""
from dataclasses import dataclass, field

GROUPS = ("dataset", "model", "optimizer", "loss")
# Overrides that say where or how a job runs, not what it trains: left out of names.
PLUMBING = ("hydra.", "mlflow.", "threads", "progress", "data_dir", "extra_data_dirs", "download", "device",
            "cuda_graph", "batch_size", "optimizer.lr")


@dataclass(frozen=True)
class RunLabels:
    choices: dict[str, str]
    varying: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_hydra(cls, hydra_cfg) -> "RunLabels":
        """From Hydra's runtime node; in a multirun, the job's own overrides are the values that vary."""
        choices = {g: str(hydra_cfg.runtime.choices[g]) for g in GROUPS if hydra_cfg.runtime.choices.get(g)}
        labels = cls(choices)
        if str(hydra_cfg.mode) == "RunMode.MULTIRUN":
            labels = labels.with_overrides(hydra_cfg.overrides.task)
        return labels

    def with_overrides(self, overrides) -> "RunLabels":
        """These labels, with the values that vary set from a job's overrides (a population member's own)."""
        varying = dict(self.varying)
        for override in overrides:
            key, _, value = override.lstrip("+~").partition("=")
            if key not in GROUPS and not key.startswith(PLUMBING):
                varying[key] = value
        return RunLabels(self.choices, varying)

    @classmethod
    def from_config(cls, cfg) -> "RunLabels":
        """Without Hydra (a job called from Python): the dataset's name and the targets' class names."""
        choices = {"dataset": str(cfg.dataset.name)}
        for group in GROUPS[1:]:
            target = cfg.get(group, {}).get("_target_")
            if target:
                choices[group] = str(target).rsplit(".", 1)[-1].lower()
        return cls(choices)

    def name(self, batch_size: int, lr, trial_number: int | None = None) -> str:
        parts = [self.choices.get(g) for g in GROUPS[:3]]
        name = "-".join([p for p in parts if p] + [f"bs{batch_size}", f"lr{_short(lr)}"])
        name += "".join(f"-{k.rsplit('.', 1)[-1]}={_short(v)}" for k, v in self.varying.items())
        return name if trial_number is None else f"trial-{trial_number}-{name}"

    def tags(self) -> dict[str, str]:
        return dict(self.choices)


def _short(value) -> str:
    """Numbers in a few digits (a learning rate as 0.00123), whole numbers whole (a seed as 2042)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e12 else f"{number:.3g}"
