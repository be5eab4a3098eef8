"""Readable names for runs and tags, from the config options a job was composed of (``hydra:runtime.choices``)
and, in a sweep, the values that vary between its jobs — never from a key one model has and another lacks.

A sweep's run names begin with what differs, in the shortest form a table column keeps visible:
``t6 bs16 lr3.1e-3`` (trial 6 of a study), ``j2 bs64`` (job 2 of a grid); fixed values stay in params and tags."""
import os
from dataclasses import dataclass, field

GROUPS = ("dataset", "model", "optimizer", "loss")
# Keys shown by a short name; others by their last dotted part (model.width -> width256).
SHORT_KEYS = {"batch_size": "bs", "optimizer.lr": "lr", "seed": "seed"}
FIRST = ("batch_size", "optimizer.lr")  # in names, these lead (when they vary), in this order
GRID_VARYING_ENV = "SWEEPLAB_GRID_VARYING"  # set by a grid sweep's parent (sweeplab.grid_parent): the swept keys


@dataclass(frozen=True)
class RunLabels:
    choices: dict[str, str]
    varying: dict[str, str] = field(default_factory=dict)
    job: int | None = None  # a grid job's number

    @classmethod
    def from_hydra(cls, hydra_cfg) -> "RunLabels":
        """From Hydra's runtime node; in a grid sweep, the job's own values of the swept keys vary."""
        choices = {g: str(hydra_cfg.runtime.choices[g]) for g in GROUPS if hydra_cfg.runtime.choices.get(g)}
        swept = os.environ.get(GRID_VARYING_ENV)
        if str(hydra_cfg.mode) == "RunMode.MULTIRUN" and swept:
            keys = swept.split(",")
            overrides = [o.lstrip("+~").partition("=") for o in hydra_cfg.overrides.task]
            return cls(choices, {k: v for k, _, v in overrides if k in keys}, int(hydra_cfg.job.num))
        return cls(choices)

    def with_overrides(self, overrides) -> "RunLabels":
        """These labels, with the values set by a job's overrides added to those that vary."""
        varying = dict(self.varying)
        for override in overrides:
            key, _, value = override.lstrip("+~").partition("=")
            if not key.startswith("hydra."):
                varying[key] = value
        return RunLabels(self.choices, varying, self.job)

    @classmethod
    def from_config(cls, cfg) -> "RunLabels":
        """Without Hydra (a job called from Python): the dataset's name and the targets' class names."""
        choices = {"dataset": str(cfg.dataset.name)}
        for group in GROUPS[1:]:
            target = cfg.get(group, {}).get("_target_")
            if target:
                choices[group] = str(target).rsplit(".", 1)[-1].lower()
        return cls(choices)

    def name(self, batch_size: int, lr, trial=None, seed: int | None = None) -> str:
        """A study's trial: ``t<number>`` and its searched values (``trial.params``); a confirmation run:
        ``c<number>`` (its number in the confirmation study), the values and its seed; a grid's job: ``j<number>`` and its swept values; a single job: its options, batch size
        and learning rate."""
        if trial is not None:  # a confirmation run (trial of the `<study>.confirm` study) is c<number>
            prefix = "c" if getattr(trial, "role", None) == "confirm" else "t"
            return " ".join([f"{prefix}{trial.number}", *values_text(trial.params)] + ([f"seed{seed}"] if seed else []))
        if self.job is not None:
            return " ".join([f"j{self.job}", *values_text(self.varying)])
        parts = [self.choices.get(g) for g in GROUPS[:3]]
        return " ".join(["-".join(p for p in parts if p), f"bs{batch_size}", f"lr{short_number(lr)}"])

    def tags(self) -> dict[str, str]:
        return dict(self.choices) | ({"sweeplab.grid_job": str(self.job)} if self.job is not None else {})


def values_text(values: dict) -> list[str]:
    """``{"optimizer.lr": 0.0031, "batch_size": 16, "model": "cnn"}`` -> ``["bs16", "lr3.1e-3", "cnn"]``."""
    ordered = [k for k in FIRST if k in values] + [k for k in values if k not in FIRST]
    return [value_text(k, values[k]) for k in ordered]


def value_text(key: str, value) -> str:
    if key in GROUPS or "/" in key:  # a config group's option names itself: model=cnn -> cnn
        return str(value)
    return SHORT_KEYS.get(key, key.rsplit(".", 1)[-1]) + short_number(value)


def short_number(value) -> str:
    """The shortest of a number's readable forms at two significant digits: 16, 0.5, 0.031, 3.1e-3, 1e-3."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if number.is_integer() and abs(number) < 1e6:
        return str(int(number))
    plain = f"{number:.2g}"
    mantissa, _, exponent = f"{number:.1e}".partition("e")
    scientific = f"{mantissa.removesuffix('.0')}e{int(exponent)}"
    return scientific if len(scientific) <= len(plain) or "e" in plain else plain
