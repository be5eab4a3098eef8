"""A population's training loop: K members of one network, stacked (populations.stack), trained together.

Each member keeps what makes it its own trial: its optimizer values (an optimizer each, so any torch optimizer
applies its own rule), its initial weights and its batch order (both from its seed, drawn exactly as
``training.fit`` draws them), its per-epoch metrics and its best weights. A member that is pruned, or whose loss
turns NaN, leaves the stack at the end of that epoch; the others go on without it, and a reserve member, if the
population has one, steps into its place.
"""
import copy
import logging
import math
import time
from typing import Callable

import torch
from torch import nn

from sweeplab.cuda_graph import step_for_full_batches
from sweeplab.data import Splits, batches
from sweeplab.interrupts import raise_if_stopped
from sweeplab.metrics import MetricSet
from sweeplab.objective import Objective
from sweeplab.populations.member_optimizer import MemberOptimizer
from sweeplab.populations.stack import Stack
from sweeplab.training import (EVAL_BATCH_BYTES, EpochMetrics, History, NonFiniteLoss, gather, progress_bar,
                               to_unit)

log = logging.getLogger(__name__)


def fit_population(
    stack: Stack,
    optimizer: MemberOptimizer,
    splits: Splits,
    *,
    epochs: int,
    batch_size: int,
    seeds: list[int],
    on_epoch: Callable[[int, EpochMetrics], None],
    loss_fn: Callable = nn.functional.nll_loss,
    objective: Objective = Objective(),
    augment: Callable | None = None,
    progress: bool = True,
    cuda_graph: bool = True,
    reserves: list[tuple[nn.Module, dict]] = (),
    metrics: list[MetricSet] | None = None,
) -> tuple[dict[int, History], dict[int, BaseException]]:
    """Train the stack's members, then its ``reserves``; return each member's History (by its index in ``seeds``)
    and, for each member that stopped early, why: the exception its ``on_epoch(member, metrics)`` raised (e.g.
    pruned), or NonFiniteLoss.

    ``seeds`` holds the stack's members' seeds, then the reserves'. A reserve is a further member, (its model, its
    optimizer values), that steps into the stack where a member has left (finished, pruned or failed), at the end
    of an epoch: the stack stays as wide as it started while reserves wait. Each member counts its own epochs.
    ``metrics``, if given, holds each member's own user metrics (as ``seeds``), computed on its own outputs.
    """
    images, labels = splits.train
    count = len(labels)
    device = stack.stacked_parameters()[0].device
    width = stack.members
    alive = list(range(width))  # member indices, in stack order
    waiting = list(range(width, width + len(reserves)))
    shuffles = [torch.Generator().manual_seed(seed) for seed in seeds]
    augment_generators = [torch.Generator(device).manual_seed(seed) for seed in seeds] if augment else None
    per_sample = _per_sample(loss_fn)
    histories = {k: History(objective) for k in range(len(seeds))}
    stopped: dict[int, BaseException] = {}
    steps = _Steps(stack, optimizer, images, labels, per_sample, augment, augment_generators, device)
    while alive:
        raise_if_stopped()
        started = time.perf_counter()
        stack.train()
        steps.start(alive, batch_size, graph=cuda_graph)
        # [members, count]: row k is member k's order; a batch is one slice of it, member-major as the stack wants
        orders = torch.stack([torch.randperm(count, generator=shuffles[k]) for k in alive]).to(images.device)
        label = _epochs_label(histories, alive, epochs)
        for start in progress_bar(range(0, count, batch_size), f"{label} ({len(alive)} members)", progress):
            steps(orders[:, start:start + batch_size].reshape(-1))
        train_loss = (steps.loss_sum / count).tolist()
        train_accuracy = (steps.correct.double() / count).tolist()
        own_metrics = [metrics[k] for k in alive] if metrics else None
        val_loss, val_accuracy = evaluate_population(stack, *splits.val, per_sample=per_sample, metrics=own_metrics)
        elapsed = time.perf_counter() - started
        leaving, reported = [], []
        for position, k in enumerate(alive):
            history = histories[k]
            epoch = len(history.epochs) + 1
            if not math.isfinite(train_loss[position]):
                stopped[k] = NonFiniteLoss(f"training loss became {train_loss[position]} in epoch {epoch}; "
                                           f"lower optimizer.lr")
                leaving.append(k)
                continue
            try:
                user = own_metrics[position].compute("val_") if own_metrics else {}
            except Exception as failed:  # this member's metric failed: it ends, the others go on
                stopped[k] = failed
                leaving.append(k)
                continue
            measured = EpochMetrics(epoch, train_loss[position], train_accuracy[position], val_loss[position],
                                    val_accuracy[position], elapsed, user)
            if not history.epochs or objective.better(objective.of(measured), objective.of(history.best)):
                history.best_state = stack.member_state(position)
            history.epochs.append(measured)
            reported.append(f"{objective.of(measured):.4f}")
            try:
                on_epoch(k, measured)
            except Exception as stop:  # pruned (or its records failed): this member ends, the others go on
                stopped[k] = stop
                leaving.append(k)
                continue
            if epoch == epochs:
                leaving.append(k)
        log.info("%s: %d members, %.2f s; %s %s", label, len(alive), elapsed, objective.metric, " ".join(reported))
        if leaving:
            staying = [k for k in alive if k not in leaving]
            if not staying and not waiting:
                break
            stack.keep([alive.index(k) for k in staying])
            optimizer.keep([alive.index(k) for k in staying])
            alive = staying
        joining, waiting = waiting[:width - len(alive)], waiting[width - len(alive):]
        if joining:
            stack.extend([reserves[k - width][0] for k in joining])
            optimizer.extend([reserves[k - width][1] for k in joining])
            alive = alive + joining
    return histories, stopped


def _epochs_label(histories: dict, alive: list[int], epochs: int) -> str:
    """'epoch 3/10', or the range of the members' own epochs once reserves have stepped in."""
    own = sorted({len(histories[k].epochs) + 1 for k in alive})
    return f"epoch {own[0]}/{epochs}" if len(own) == 1 else f"epochs {own[0]}-{own[-1]}/{epochs}"


class _Steps:
    """One training step of every member at once: ``steps(index)`` takes the members' batches as one member-major
    index, ``[members * batch]``. On a GPU each full batch replays one CUDA graph, as ``fit``'s steps do; when
    members leave, the stack's parameters are new tensors, so the graph is captured anew."""

    def __init__(self, stack: Stack, optimizer: MemberOptimizer, images, labels, per_sample: Callable,
                 augment: Callable | None, augment_generators: list | None, device: torch.device):
        self.stack, self.optimizer, self.images, self.labels = stack, optimizer, images, labels
        self.per_sample, self.augment, self.augment_generators, self.device = per_sample, augment, augment_generators, device
        self.alive: list[int] | None = None

    def start(self, alive: list[int], batch_size: int, graph: bool) -> None:
        """A new epoch: running sums back to zero; new sums and a new graph if members have left."""
        if alive == self.alive:
            self.loss_sum.zero_()
            self.correct.zero_()
            return
        self.alive, self.members, self.full_size = list(alive), len(alive), len(alive) * batch_size
        # They outlive each epoch, so that a captured graph keeps adding into them.
        self.loss_sum = torch.zeros(self.members, device=self.device)
        self.correct = torch.zeros(self.members, dtype=torch.long, device=self.device)
        self.full_step = step_for_full_batches(self.step, self.full_size, self.device, self.images,
                                               self.optimizer.optimizers, graph, bool(self.augment))

    def __call__(self, index: torch.Tensor) -> None:
        (self.full_step if len(index) == self.full_size else self.step)(index)

    def step(self, index: torch.Tensor) -> None:
        x, y = gather(self.images, self.labels, index, self.device)
        size = len(index) // self.members
        if self.augment:
            x = torch.cat([self.augment(part, self.augment_generators[k]) for part, k in zip(x.split(size), self.alive)])
        self.optimizer.zero_grad()
        output = self.stack(x)
        losses = self.per_sample(output, y).view(self.members, size).mean(1)
        losses.sum().backward()
        self.optimizer.step()
        self.loss_sum.add_(losses.detach(), alpha=size)
        self.correct.add_((output.detach().argmax(1) == y).view(self.members, size).sum(1))


def _per_sample(loss_fn) -> Callable:
    """The loss of each sample: the configured loss with reduction='none' (its mean over a member's batch is what
    the member's own training minimises), or, for a loss without that option, the loss one sample at a time."""
    if isinstance(loss_fn, nn.Module) and getattr(loss_fn, "reduction", None) == "mean" and \
            getattr(loss_fn, "weight", None) is None:
        unreduced = copy.copy(loss_fn)
        unreduced.reduction = "none"
        return unreduced
    return lambda output, y: torch.stack([loss_fn(output[i:i + 1], y[i:i + 1]) for i in range(len(y))])


@torch.inference_mode()
def evaluate_population(stack: Stack, images, labels, *, per_sample: Callable, batch_size: int = 8192,
                        metrics: list[MetricSet] | None = None):
    """Each member's mean loss and accuracy over a whole split (one host synchronisation at the end); ``metrics``,
    one MetricSet per member in stack order, are reset and updated with that member's outputs."""
    stack.eval()
    members = stack.members
    for own in metrics or ():
        own.reset()
    device = stack.stacked_parameters()[0].device
    loss_sum = torch.zeros(members, device=device)
    correct = torch.zeros(members, dtype=torch.long, device=device)
    batch_size = max(1, min(batch_size, EVAL_BATCH_BYTES // (4 * members * max(1, images[0].numel()))))
    for x, y in batches(images, labels, batch_size):
        x, y = to_unit(x, device), y.to(device, non_blocking=True)
        output = stack(x.repeat(members, *[1] * (x.dim() - 1)))
        ys = y.repeat(members)
        loss_sum += per_sample(output, ys).view(members, -1).sum(1)
        correct += (output.argmax(1) == ys).view(members, -1).sum(1)
        for own, member_output in zip(metrics or (), output.split(len(y))):  # member-major: member k's rows k*n:(k+1)*n
            own.update(member_output, y)
    return (loss_sum / len(labels)).tolist(), (correct.double() / len(labels)).tolist()
