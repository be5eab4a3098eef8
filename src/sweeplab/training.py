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

from sweeplab.data import Splits, batches

log = logging.getLogger(__name__)


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite."""


@dataclass
class EpochMetrics:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    epoch_time_s: float


@dataclass
class History:
    epochs: list[EpochMetrics] = field(default_factory=list)
    best_state: dict | None = None

    @property
    def best(self) -> EpochMetrics:
        return max(self.epochs, key=lambda m: m.val_accuracy)


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
) -> History:
    """Train with NLLLoss (the model ends in LogSoftmax); keep the weights of the best validation epoch."""
    loss_fn = nn.NLLLoss(reduction="sum")
    shuffle = torch.Generator().manual_seed(seed)
    history = History()
    images, labels = splits.train
    steps = math.ceil(len(labels) / batch_size)
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        model.train()
        # Sums stay on the device: one synchronisation per epoch instead of one per step.
        loss_sum = torch.zeros((), device=images.device)
        correct = torch.zeros((), device=images.device, dtype=torch.long)
        bar = tqdm(
            batches(images, labels, batch_size, shuffle), total=steps, desc=f"epoch {epoch}/{epochs}",
            leave=False, disable=None if progress else True,
        )
        for x, y in bar:
            optimizer.zero_grad(set_to_none=True)
            output = model(x)
            loss = loss_fn(output, y)
            (loss / len(y)).backward()
            optimizer.step()
            loss_sum += loss.detach()
            correct += (output.detach().argmax(1) == y).sum()
        train_loss = loss_sum.item() / len(labels)
        if not math.isfinite(train_loss):
            raise NonFiniteLoss(f"training loss became {train_loss} in epoch {epoch}; lower optimizer.lr")
        val_loss, val_accuracy = evaluate(model, *splits.val)
        metrics = EpochMetrics(
            epoch, train_loss, correct.item() / len(labels), val_loss, val_accuracy, time.perf_counter() - started
        )
        if not history.epochs or val_accuracy > history.best.val_accuracy:
            history.best_state = copy.deepcopy(model.state_dict())
        history.epochs.append(metrics)
        log.info(
            "epoch %d/%d  train loss %.4f acc %.4f | val loss %.4f acc %.4f | %.2f s",
            epoch, epochs, metrics.train_loss, metrics.train_accuracy, val_loss, val_accuracy, metrics.epoch_time_s,
        )
        on_epoch(metrics)
    return history


@torch.inference_mode()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 8192):
    """Mean NLL loss and accuracy over a whole split."""
    model.eval()
    loss_sum, correct = 0.0, 0
    for x, y in batches(images, labels, batch_size):
        output = model(x)
        loss_sum += nn.functional.nll_loss(output, y, reduction="sum").item()
        correct += (output.argmax(1) == y).sum().item()
    return loss_sum / len(labels), correct / len(labels)
