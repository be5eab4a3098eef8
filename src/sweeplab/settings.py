"""The job's plain settings, checked where they enter: every bad value is reported before any work starts."""
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf

from sweeplab.building import check_arguments, import_target
from sweeplab.errors import ConfigError
from sweeplab.metrics import check_metrics
from sweeplab.objective import Objective, declared_metrics
from sweeplab.paths import resolve


@dataclass(frozen=True)
class JobSettings:
    batch_size: int
    epochs: int
    seed: int
    split_seed: int
    device: torch.device
    cuda_graph: bool
    threads: int
    data_dir: Path
    extra_data_dirs: tuple[Path, ...]
    download: bool
    val_size: int
    progress: bool

    @classmethod
    def from_config(cls, cfg) -> "JobSettings":
        if "lr" in cfg.optimizer:
            check_number(cfg.optimizer.lr, "optimizer.lr", "a number > 0, e.g. optimizer.lr=1e-3")
        check_components(cfg)
        check_metrics(cfg)
        Objective.from_config(cfg.objective, declared_metrics(cfg))
        return cls(
            batch_size=check_integer(cfg.batch_size, "batch_size", 1, "a power of two such as batch_size=64"),
            epochs=check_integer(cfg.epochs, "epochs", 1, "e.g. epochs=10"),
            seed=check_integer(cfg.seed, "seed", 0, "e.g. seed=42"),
            split_seed=check_integer(cfg.get("split_seed", cfg.seed), "split_seed", 0, "e.g. split_seed=42"),
            device=pick_device(str(cfg.device)),
            cuda_graph=check_bool(cfg.cuda_graph, "cuda_graph"),
            threads=check_integer(cfg.threads, "threads", 0, "0 = all cores"),
            data_dir=resolve(cfg.data_dir),
            extra_data_dirs=tuple(resolve(d) for d in cfg.extra_data_dirs),
            download=check_bool(cfg.download, "download"),
            val_size=check_integer(cfg.val_size, "val_size", 1, "e.g. val_size=10000"),
            progress=check_bool(cfg.progress, "progress"),
        )


def check_components(cfg) -> None:
    """Every target the job will build imports and takes the keys its config gives it (the data facts a model asks
    for come later, from the data)."""
    for key in ("model", "optimizer", "loss", "dataset.source"):
        node = OmegaConf.select(cfg, key)
        if node is None:
            raise ConfigError(f"the config has no {key}; choose one, e.g. {key.split('.')[0]}=<an option>")
        check_arguments(import_target(node.get("_target_"), key), node, key, {})


def check_integer(value, key: str, minimum: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum} (got {value!r}); {hint}")
    return value


def check_number(value, key: str, hint: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
        raise ConfigError(f"{key} must be {hint} (got {value!r})")
    return float(value)


def check_bool(value, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false (got {value!r})")
    return value


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device must be one of auto, cpu, cuda, cuda:N, mps (got {name!r})")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={name} but CUDA is not available here; use device=auto or device=cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"device={name} but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device={name} but MPS is not available here; use device=auto or device=cpu")
    return device


def cpu_count() -> int:
    """The cores this process may use; inside a SLURM job, at most those it was given, also where the cluster does
    not bind jobs to cores (TaskPlugin=task/none): several jobs on one node must not each use every core."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    given = os.environ.get("SLURM_CPUS_PER_TASK", "")
    return min(usable, int(given)) if given.isdigit() and int(given) > 0 else usable
