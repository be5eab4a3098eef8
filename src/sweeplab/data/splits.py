"""Whole splits held as tensors, and batches sliced from them (no per-sample work)."""
from dataclasses import dataclass
from typing import Iterator

import torch

from sweeplab.errors import ConfigError


@dataclass
class Splits:
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]

    @property
    def in_features(self) -> int:
        return self.train[0][0].numel()

    @property
    def num_classes(self) -> int:
        return int(torch.cat([self.train[1], self.test[1]]).max()) + 1

    def to(self, device: torch.device) -> "Splits":
        move = lambda pair: tuple(t.to(device, non_blocking=True) for t in pair)  # noqa: E731
        return Splits(move(self.train), move(self.val), move(self.test))


def make_splits(train, test, val_size: int, seed: int) -> Splits:
    """Carve a seeded validation set out of the training split; the test split stays untouched."""
    images, labels = train
    if not 1 <= val_size < len(labels):
        raise ConfigError(f"val_size must be between 1 and {len(labels) - 1} for this dataset (got {val_size})")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    val, fit = order[:val_size], order[val_size:]
    return Splits(train=(images[fit], labels[fit]), val=(images[val], labels[val]), test=test)


def batches(images, labels, batch_size: int) -> Iterator:
    """Yield (images, labels) batches in order; the last batch may be short. (Training shuffles in ``fit``.)"""
    for start in range(0, len(labels), batch_size):
        yield images[start : start + batch_size], labels[start : start + batch_size]
