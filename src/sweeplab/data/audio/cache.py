"""Features computed once per setting and kept on disk, keyed by the settings and the files they came from.

Parallel trials may build the same entry at once: each writes a private temporary file and renames it into place
(``os.replace`` is atomic), so a reader sees either no file or a whole one, never a half-written one.
"""
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import torch

from sweeplab.errors import DataError


def cache_key(settings: dict, files: list[Path]) -> str:
    """A digest of the settings and of each file's name, size and modification time."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for path in files:
        stat = path.stat()
        digest.update(f"{path.name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def cached(folder: Path, key: str, compute: Callable[[], dict]) -> dict:
    """The tensors stored under ``key``, computing and storing them first if need be."""
    path = folder / f"{key}.pt"
    if path.is_file():
        try:
            return torch.load(path, weights_only=True)
        except (RuntimeError, EOFError, OSError):
            pass  # unreadable (e.g. a disk filled up mid-write before this scheme): compute it again
    tensors = compute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".partial")
        with os.fdopen(handle, "wb") as file:
            torch.save(tensors, file)
        os.replace(temporary, path)
    except OSError as error:
        raise DataError(f"cannot write the feature cache in {folder} ({error.strerror}); set data_dir=<a writable folder>") from None
    return tensors
