"""The training loop: plain tensors in, per-epoch metrics out. Tracking and pruning hook in via ``on_epoch``."""
import copy
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from sweeplab.cuda_graph import step_for_full_batches
from sweeplab.data import Splits, batches
from sweeplab.errors import SweeplabError
from sweeplab.interrupts import raise_if_stopped
from sweeplab.metrics import MetricSet
from sweeplab.objective import Objective

log = logging.getLogger(__name__)
EVAL_BATCH_BYTES = 256 * 2**20


class NonFiniteLoss(SweeplabError):
    """The training loss became NaN or infinite."""


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    epoch_time_s: float
    user: dict[str, float] = field(default_factory=dict)  # the user's own metrics, as val_<name> (sweeplab.metrics)

    def value(self, metric: str) -> float:
        return self.user[metric] if metric in self.user else getattr(self, metric)

    def values(self) -> dict[str, float]:
        """Every metric of the epoch by name (the epoch number aside)."""
        own = {k: v for k, v in vars(self).items() if k not in ("epoch", "user")}
        return {**own, **self.user}


@dataclass
class History:
    objective: Objective = field(default_factory=Objective)
    epochs: list[EpochMetrics] = field(default_factory=list)
    best_state: dict | None = None

    @property
    def best(self) -> EpochMetrics:
        return self.objective.best(self.epochs)


def progress_bar(iterable, desc: str, progress: bool):
    """tqdm's bar over ``iterable`` where progress is on (and stderr a terminal); else the iterable itself, with no
    bar object made and finalized every epoch."""
    return tqdm(iterable, desc=desc, leave=False, disable=None) if progress else iterable


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    splits: Splits,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    progress: bool = True,
    on_epoch: Callable[[EpochMetrics], None] = lambda metrics: None,
    cuda_graph: bool = True,
    loss_fn: Callable = nn.functional.nll_loss,
    objective: Objective = Objective(),
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    metrics: MetricSet | None = None,
) -> History:
    """Train with ``loss_fn`` (mean over the batch); keep the weights of the epoch that is best by ``objective``.

    Each epoch shuffles the indices once and gathers each batch from the tensors that hold the whole split. Per-step
    results stay on the device (running sums of loss and correct predictions): the host waits for the device once
    per epoch, never per step. On a GPU, with ``cuda_graph``, each full batch's step is one CUDA graph replay.
    ``augment(inputs, generator)``, if given, changes each training batch on the device (seeded from ``seed``).
    ``metrics``, the user's own, are computed on the validation split with sweeplab's, every epoch.
    """
    shuffle = torch.Generator().manual_seed(seed)
    history = History(objective)
    images, labels = splits.train
    count = len(labels)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    device = params[0].device  # uint8 inputs may stay on the host (see Splits.to)
    augment_generator = torch.Generator(device).manual_seed(seed) if augment else None
    # Running sums on the device: the host reads them once per epoch. They live as long as fit, so that a
    # captured CUDA graph can keep adding into them.
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)

    def step(index: torch.Tensor) -> None:
        x, y = gather(images, labels, index, device)
        if augment:
            x = augment(x, augment_generator)
        for p in params:  # optimizer.zero_grad(set_to_none=True), minus its per-call profiler and dynamo wrappers
            p.grad = None
        output = model(x)
        loss = loss_fn(output, y)
        loss.backward()
        optimizer.step()
        loss_sum.add_(loss.detach(), alpha=len(index))
        correct.add_((output.detach().argmax(1) == y).sum())

    full_batch_step = step_for_full_batches(step, batch_size, device, images, [optimizer], cuda_graph, bool(augment))
    for epoch in range(1, epochs + 1):
        raise_if_stopped()
        started = time.perf_counter()
        model.train()
        order = torch.randperm(count, generator=shuffle).to(images.device)
        loss_sum.zero_()
        correct.zero_()
        starts = range(0, count, batch_size)
        for start in progress_bar(starts, f"epoch {epoch}/{epochs}", progress):
            index = order[start:start + batch_size]
            (full_batch_step if len(index) == batch_size else step)(index)
        train_loss = loss_sum.item() / count
        if not math.isfinite(train_loss):
            raise NonFiniteLoss(f"training loss became {train_loss} in epoch {epoch}; lower optimizer.lr")
        train_accuracy = correct.item() / count
        val_loss, val_accuracy = evaluate(model, *splits.val, loss_fn=loss_fn, metrics=metrics)
        user = metrics.compute("val_") if metrics else {}
        measured = EpochMetrics(epoch, train_loss, train_accuracy, val_loss, val_accuracy,
                                time.perf_counter() - started, user)
        if not history.epochs or objective.better(objective.of(measured), objective.of(history.best)):
            history.best_state = copy.deepcopy(model.state_dict())
        history.epochs.append(measured)
        log.info(
            "epoch %d/%d  train loss %.4f acc %.4f | val loss %.4f acc %.4f%s | %.2f s",
            epoch, epochs, measured.train_loss, measured.train_accuracy, val_loss, val_accuracy,
            "".join(f" {k.removeprefix('val_')} {v:.4f}" for k, v in user.items()), measured.epoch_time_s,
        )
        on_epoch(measured)
    return history


def gather(images, labels, index: torch.Tensor, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One batch, by index, from the tensors that hold a whole split: float inputs and labels on the device."""
    x, y = images.index_select(0, index), labels.index_select(0, index)
    if x.dtype == torch.uint8:
        x, y = to_unit(x, device), y.to(device, non_blocking=True)
    return x, y


def to_unit(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A uint8 batch (perhaps read from a memory map) as float32 in 0..1 on the device, as ToTensor scales;
    a float batch as it is (float splits already live on the device)."""
    if images.dtype != torch.uint8:
        return images
    return images.to(device, non_blocking=True).float().div_(255)


@torch.inference_mode()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 8192,
             loss_fn: Callable = nn.functional.nll_loss, metrics: MetricSet | None = None):
    """Mean loss and accuracy over a whole split (one host synchronisation at the end); ``metrics``, if given, are
    reset and updated with each batch's outputs (``metrics.compute`` then gives their values)."""
    model.eval()
    if metrics:
        metrics.reset()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    if images.dtype == torch.uint8:  # keep a float batch of large images to EVAL_BATCH_BYTES
        batch_size = max(1, min(batch_size, EVAL_BATCH_BYTES // (4 * images[0].numel())))
    for x, y in batches(images, labels, batch_size):
        if x.dtype == torch.uint8:
            x, y = to_unit(x, device), y.to(device, non_blocking=True)
        output = model(x)
        loss_sum += loss_fn(output, y) * len(y)
        correct += (output.argmax(1) == y).sum()
        if metrics:
            metrics.update(output, y)
    return loss_sum.item() / len(labels), correct.item() / len(labels)
