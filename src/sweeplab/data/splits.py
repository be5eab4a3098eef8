"""Whole splits held as tensors, and batches sliced from them (no per-sample work)."""
from dataclasses import dataclass
from typing import Iterator

import torch

from sweeplab.errors import ConfigError


class Rows:
    """Some rows of a larger tensor, gathered only when a batch asks for them.

    uint8 inputs may be a memory-mapped cache larger than RAM: a split carved from them stays a view of the map plus
    an index, instead of a copy. Offers what the training loop uses: ``len``, ``shape``, ``dtype``, ``device``,
    ``index_select(0, index)`` and ``rows[i]`` / ``rows[start:stop]``.
    """

    def __init__(self, base: torch.Tensor, index: torch.Tensor):
        self.base, self.index = base, index

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.index), *self.base.shape[1:]))

    @property
    def dtype(self) -> torch.dtype:
        return self.base.dtype

    @property
    def device(self) -> torch.device:
        return self.base.device

    def index_select(self, dim: int, index: torch.Tensor) -> torch.Tensor:
        assert dim == 0, "Rows are selected along the first dimension only"
        return self.base.index_select(0, self.index.index_select(0, index))

    def __getitem__(self, key: int | slice) -> torch.Tensor:
        if isinstance(key, int):
            return self.base[int(self.index[key])]
        return self.base.index_select(0, self.index[key])


@dataclass
class Splits:
    train: tuple[torch.Tensor | Rows, torch.Tensor]
    val: tuple[torch.Tensor | Rows, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]

    @property
    def in_features(self) -> int:
        return self.train[0][0].numel()

    @property
    def num_classes(self) -> int:
        return int(torch.cat([self.train[1], self.test[1]]).max()) + 1

    def to(self, device: torch.device) -> "Splits":
        """float32 splits move whole; uint8 ones (perhaps a memory map) stay, and go to the device batch by batch."""
        def move(pair):
            if pair[0].dtype == torch.uint8:
                return pair
            return tuple(t.to(device, non_blocking=True) for t in pair)

        return Splits(move(self.train), move(self.val), move(self.test))


def make_splits(train, test, val_size: int, seed: int) -> Splits:
    """Carve a seeded validation set out of the training split; the test split stays untouched."""
    images, labels = train
    if not 1 <= val_size < len(labels):
        raise ConfigError(f"val_size must be between 1 and {len(labels) - 1} for this dataset (got {val_size})")
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    val, fit = order[:val_size], order[val_size:]
    if images.dtype == torch.uint8:
        val = val.sort().values  # validation then reads the map front to back
        return Splits(train=(Rows(images, fit), labels[fit]), val=(Rows(images, val), labels[val]), test=test)
    return Splits(train=(images[fit], labels[fit]), val=(images[val], labels[val]), test=test)


def batches(images, labels, batch_size: int) -> Iterator:
    """Yield (images, labels) batches in order; the last batch may be short. (Training shuffles in ``fit``.)"""
    for start in range(0, len(labels), batch_size):
        yield images[start : start + batch_size], labels[start : start + batch_size]
