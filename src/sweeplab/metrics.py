"""The user's own metrics (the config's ``metrics:``, name -> spec), built through Hydra's instantiate as models and
losses are, computed over the whole validation split every epoch (``val_<name>``) and over the test split at the end
(``test_<name>``).

A spec's ``_target_`` is either
- a class whose objects follow torchmetrics' protocol: ``update(outputs, targets)`` for each batch, ``compute()`` ->
  one number (a float or a one-element tensor), ``reset()``; every torchmetrics metric is one. The spec's other
  keys are its constructor's arguments;
- or a function ``fn(outputs, targets, **settings) -> one number``, called once per split with the model's outputs
  for the whole split ([N, classes]: what the model emits, log-probabilities or logits) and its labels ([N]); the
  spec's other keys are its further arguments.
"""
import inspect
import numbers

import torch
from omegaconf import DictConfig, OmegaConf

from sweeplab.building import build, check_arguments, import_target
from sweeplab.errors import ConfigError, SweeplabError, first_line

OWN = ("accuracy", "loss")  # val_accuracy, val_loss, test_accuracy, test_loss: sweeplab's own
PROTOCOL = ("update", "compute", "reset")
EXAMPLE = ("+metrics.macro_f1='{_target_: torchmetrics.classification.MulticlassF1Score, num_classes: 10, "
           "average: macro}'")


class MetricError(SweeplabError):
    """A user metric raised, or gave something that is not one number."""


def check_metrics(cfg) -> "MetricSpecs":
    """Every user metric's name and spec, each built once: a bad one is one ConfigError before any work."""
    specs = MetricSpecs.from_config(cfg)
    specs.build(torch.device("cpu"))
    return specs


class MetricSpecs:
    """The declared metrics; ``build(device)`` makes a fresh MetricSet (one per training, per split)."""

    def __init__(self, specs: dict):
        self.specs = specs  # name -> (config node, whether its target is a function)

    @classmethod
    def from_config(cls, cfg) -> "MetricSpecs":
        node = cfg.get("metrics")
        if node is None:
            return cls({})
        if not isinstance(node, DictConfig):
            raise ConfigError(f"metrics must map names to metric specs, e.g. {EXAMPLE} (got {node!r})")
        specs = {}
        for name, spec in node.items():
            key = f"metrics.{name}"
            if not str(name).isidentifier() or name in OWN:
                raise ConfigError(f"{key}: the name must be a Python identifier other than {' or '.join(OWN)} "
                                  f"(sweeplab logs val_accuracy and val_loss itself); e.g. {EXAMPLE}")
            if not isinstance(spec, DictConfig) or not spec.get("_target_"):
                raise ConfigError(f"{key} must be a spec with a _target_ (a metric class or a function), "
                                  f"e.g. {EXAMPLE}")
            target = import_target(spec._target_, key)
            function = not inspect.isclass(target)
            check_arguments(target, spec, key, {})
            specs[str(name)] = (spec, function)
        return cls(specs)

    def __bool__(self) -> bool:
        return bool(self.specs)

    def build(self, device: torch.device) -> "MetricSet":
        built = {}
        for name, (spec, function) in self.specs.items():
            key = f"metrics.{name}"
            if function:
                spec = OmegaConf.create({**OmegaConf.to_container(spec, resolve=True), "_partial_": True})
                built[name] = OverWholeSplit(build(spec, key=key))
                continue
            metric = build(spec, key=key)
            missing = [m for m in PROTOCOL if not callable(getattr(metric, m, None))]
            if missing:
                raise ConfigError(f"{key}._target_={spec._target_} builds a {type(metric).__name__} without "
                                  f"{', '.join(missing)}(); a metric class needs update(outputs, targets), compute() "
                                  f"and reset() (torchmetrics' protocol), or name a function fn(outputs, targets)")
            built[name] = metric.to(device) if isinstance(metric, torch.nn.Module) else metric
        return MetricSet(built)


class MetricSet:
    """One training's user metrics over one split at a time: ``reset()``, ``update(outputs, targets)`` per batch,
    then ``compute()`` -> {name: value}."""

    def __init__(self, metrics: dict):
        self.metrics = metrics

    def __bool__(self) -> bool:
        return bool(self.metrics)

    def reset(self) -> None:
        for name, metric in self.metrics.items():
            _call(name, "reset()", metric.reset)

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        for name, metric in self.metrics.items():
            _call(name, "update(outputs, targets)", metric.update, outputs, targets)

    @torch.inference_mode()  # as the evaluation pass that filled them: their states may be inference tensors
    def compute(self, prefix: str) -> dict[str, float]:
        return {f"{prefix}{name}": _number(name, _call(name, "compute()", metric.compute))
                for name, metric in self.metrics.items()}


class OverWholeSplit:
    """A function ``fn(outputs, targets)`` as a metric: the split's outputs and labels gathered, then one call."""

    def __init__(self, function):
        self.function = function
        self.reset()

    def reset(self) -> None:
        self.outputs, self.targets = [], []

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.outputs.append(outputs.detach())
        self.targets.append(targets.detach())

    def compute(self):
        return self.function(torch.cat(self.outputs), torch.cat(self.targets))


def _call(name: str, what: str, method, *args):
    try:
        return method(*args)
    except SweeplabError:
        raise
    except Exception as error:
        raise MetricError(f"metrics.{name}: {what} raised {type(error).__name__}: {first_line(error)}") from None


def _number(name: str, value) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    shown = f"a tensor of shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
    raise MetricError(f"metrics.{name}: compute() gave {shown}, not one number; make it return a float or a "
                      f"one-element tensor (for a torchmetrics classification metric: average='macro', not None)")


def probe(metrics: MetricSet, outputs: torch.Tensor, targets: torch.Tensor) -> None:
    """Each metric once on a few of the model's outputs, before training: one that raises or does not give one
    number fails now, as a ConfigError, rather than after the first epoch."""
    try:
        with torch.inference_mode():
            metrics.reset()
            metrics.update(outputs, targets)
        metrics.compute("")
        metrics.reset()
    except MetricError as error:
        raise ConfigError(f"{error} (tried before training on {len(targets)} validation inputs)") from None
