"""Shared helpers for the audio tests: the offline FSDD copy beside the project, and small folders built from it."""
import shutil
from pathlib import Path

import pytest

from sweeplab.data.source import DataPlaces
from sweeplab.paths import PROJECT_ROOT

FSDD = PROJECT_ROOT.parent / "shared" / "data" / "fsdd"  # CI clones the repo with shared/ beside it

needs_fsdd = pytest.mark.skipif(not (FSDD / "recordings").is_dir(), reason=f"no FSDD copy in {FSDD}")


def small_copy(folder: Path, speakers=("george", "theo"), takes=range(0, 8)) -> Path:
    """A few real recordings (every digit, the given speakers and takes) copied into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for digit in range(10):
        for speaker in speakers:
            for take in takes:
                name = f"{digit}_{speaker}_{take}.wav"
                shutil.copy(FSDD / "recordings" / name, folder / name)
    return folder


def places(tmp_path: Path, *extra_dirs: Path) -> DataPlaces:
    return DataPlaces(tmp_path / "data", tuple(extra_dirs), download=False)
