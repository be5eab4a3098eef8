"""The data-source interface: what a dataset config's ``source`` builds, sweeplab's own sources and a user's alike.

A dataset config names its source by ``_target_`` (any importable class) with the source's own keys:

    name: my_data
    source:
      _target_: my_package.data.MySource
      some_key: 1
    val_size: 5000

The source is built once per job (and once per sweep, to fetch). It implements two methods:

``fetch(places)``
    Make sure the files are on this machine, without reading them: look in ``places.data_dir`` (a folder of its own
    under it, named after the source), then the ``places.extra_dirs`` and any folder of its own, and download only
    if ``places.download``. Raise ``DataError`` with one line saying where it looked and what to do when the files
    cannot be had. A sweep calls it once before its first trial, so that a missing dataset is one line, not a failed
    trial each. It must not depend on keys a sweep may search that only change how files are read.

``load(places, seed)``
    Return a ``LoadedData``: the training and test splits as whole tensors (``fetch`` first, if need be). Raise
    ``DataError`` for files that cannot be read, ``ConfigError`` for settings that cannot work. ``seed`` is the
    job's seed, for sources that draw a split of their own. sweeplab carves the validation set out of ``train``.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import torch

Pair = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class DataPlaces:
    """Where a source looks for its files and keeps them: the job's ``data_dir``, ``extra_data_dirs`` and
    ``download`` keys."""

    data_dir: Path
    extra_dirs: tuple[Path, ...] = ()
    download: bool = True


@dataclass
class LoadedData:
    """A dataset as tensors.

    ``train`` and ``test`` are ``(inputs, labels)``: inputs ``[N, *input_shape]`` as float32, or as uint8 that
    sweeplab scales by 1/255 one batch at a time (so that a memory-mapped uint8 cache is never read whole); labels
    int64 ``[N]`` in ``0..num_classes-1``. ``augment``, if given, changes each training batch on the device:
    ``augment(inputs, generator) -> inputs`` with a seeded ``torch.Generator`` on the inputs' device.
    """

    train: Pair
    test: Pair
    num_classes: int
    class_names: list[str] | None = None
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = field(default=None, repr=False)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train[0].shape[1:])


@runtime_checkable
class DataSource(Protocol):
    """What a dataset config's ``source`` must build (see the module's docstring)."""

    name: str

    def fetch(self, places: DataPlaces) -> None: ...

    def load(self, places: DataPlaces, seed: int) -> LoadedData: ...
