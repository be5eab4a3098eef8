"""A decoded image folder on disk: uint8 arrays ``[N, C, H, W]`` in ``.npy`` files, read back through a memory map.

Each cache is a folder ``<data_dir>/image_folder/<root name>-<key>``; the key hashes the settings and every file's
path, size and modification time, so that changed files get a new cache. A cache is written into a private
temporary folder and renamed into place (``os.replace``): two trials that build the same cache at once both end up
reading one complete copy, and an interrupted build leaves no half-written cache behind. On one machine a lock file
also spares the work: one process decodes, the others wait for it and map its cache.
"""
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from sweeplab.errors import DataError

FORMAT = 1  # bump when the layout of a cache folder changes
Items = list[tuple[str, int]]  # (image file, class index); strings: pathlib costs more than the stat


def cache_key(settings: dict, splits: dict[str, Items], root: Path) -> str:
    digest = hashlib.sha256(json.dumps({**settings, "format": FORMAT}, sort_keys=True).encode())
    prefix = len(os.path.join(root, ""))
    for split, items in splits.items():
        for path, label in items:
            try:
                stat = os.stat(path)
            except OSError as error:
                raise DataError(f"cannot read image {path} ({error.strerror}); replace or delete the file") from None
            relative = path[prefix:]
            digest.update(f"{split}\0{relative}\0{label}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def open_or_build(folder: Path, build: Callable[[Path], None]):
    """``open_cache(folder)``, after ``build(folder)`` if no process has built it yet."""
    cached = open_cache(folder)
    if cached is None:
        with _lock(folder):
            cached = open_cache(folder)  # built by the process that held the lock before us?
            if cached is None:
                build(folder)
                cached = open_cache(folder)
    return cached


@contextmanager
def _lock(folder: Path):
    _make_parent(folder)
    try:
        lock = open(folder.parent / f".{folder.name}.lock", "w")
    except OSError as error:
        raise DataError(f"cannot write the image cache in {folder.parent} ({error.strerror}); "
                        f"set data_dir=<a writable folder>") from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _make_parent(folder: Path) -> None:
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot write the image cache in {folder.parent} ({error.strerror}); "
                        f"set data_dir=<a writable folder>") from None


def open_cache(folder: Path) -> tuple[list[str], dict[str, tuple[torch.Tensor, torch.Tensor]]] | None:
    """The classes and the ``(images, labels)`` of each split, images memory-mapped (copy-on-write, never read
    whole); None when the cache is not there."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    splits = {}
    for split in meta["splits"]:
        images = np.load(folder / f"{split}_images.npy", mmap_mode="c")
        labels = np.load(folder / f"{split}_labels.npy")
        splits[split] = torch.from_numpy(images), torch.from_numpy(labels)
    return meta["classes"], splits


def build_cache(
    folder: Path, classes: list[str], splits: dict[str, Items], shape: tuple[int, ...],
    decode: Callable[[str], np.ndarray],
) -> None:
    """Decode every image into ``folder`` one at a time (memory use stays one image, whatever the dataset's size)."""
    size_mb = sum(len(items) for items in splits.values()) * int(np.prod(shape)) / 1e6
    _make_parent(folder)
    try:
        temp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    except OSError as error:
        raise DataError(f"cannot write the image cache in {folder.parent} ({error.strerror}); "
                        f"set data_dir=<a writable folder>") from None
    try:
        for split, items in splits.items():
            images = np.lib.format.open_memmap(
                temp / f"{split}_images.npy", mode="w+", dtype=np.uint8, shape=(len(items), *shape)
            )
            for row, (path, _label) in enumerate(items):
                images[row] = decode(path)
            images.flush()
            del images
            np.save(temp / f"{split}_labels.npy", np.array([label for _path, label in items], dtype=np.int64))
        meta = {"classes": classes, "shape": list(shape), "splits": list(splits), "format": FORMAT}
        (temp / "meta.json").write_text(json.dumps(meta))
        temp.chmod(0o755)  # mkdtemp's folder is private; the cache is not
        try:
            os.replace(temp, folder)
        except OSError:
            if not (folder / "meta.json").is_file():  # not a rival's complete copy: a real failure
                raise
    except OSError as error:
        raise DataError(f"cannot write the image cache {folder} ({error.strerror or error}; it needs "
                        f"{size_mb:.0f} MB); set data_dir=<a writable folder with room>") from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def mapped_file(tensor: torch.Tensor) -> str | None:
    """The file whose memory map holds the tensor's data (from /proc/self/maps, Linux); None in plain memory."""
    address = tensor.data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        low, high = (int(v, 16) for v in fields[0].split("-"))
        if low <= address < high:
            return fields[5] if len(fields) == 6 else None
    return None
