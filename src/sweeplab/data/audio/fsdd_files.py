"""The Free Spoken Digit Dataset's files: where a copy is found, how it is downloaded and checked.

FSDD v1.0.10 (Zohar Jackson et al., CC BY-SA 4.0): ``{digit}_{speaker}_{take}.wav``, 6 speakers × 10 digits × 50
takes, 8 kHz mono. The checksums of the v1.0.10 recordings ship with sweeplab; a download is verified file by file
(GitHub's archives are not byte-stable, their contents are).
"""
import hashlib
import io
import re
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sweeplab.errors import DataError

ARCHIVE_URL = "https://github.com/Jakobovski/free-spoken-digit-dataset/archive/refs/tags/v1.0.10.tar.gz"
CHECKSUMS = Path(__file__).with_name("fsdd-v1.0.10.sha256")
NAME = re.compile(r"(\d)_([A-Za-z]+)_(\d+)\.wav")


@dataclass(frozen=True)
class Recording:
    path: Path
    digit: int
    speaker: str
    take: int


def recordings_in(folder: Path) -> list[Recording] | None:
    """The recordings in ``folder`` (or its ``recordings/``), sorted by name; None if it holds no .wav file."""
    for candidate in (folder / "recordings", folder):
        paths = sorted(candidate.glob("*.wav")) if candidate.is_dir() else []
        if paths:
            return [_parse(path) for path in paths]
    return None


def _parse(path: Path) -> Recording:
    match = NAME.fullmatch(path.name)
    if not match:
        raise DataError(f"{path} is not named {{digit}}_{{speaker}}_{{take}}.wav; rename it or move it out of the folder")
    return Recording(path, int(match[1]), match[2], int(match[3]))


def expected_checksums() -> dict[str, str]:
    lines = CHECKSUMS.read_text().split("\n")
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


def download(target: Path, looked_in: list[Path]) -> None:
    """Fetch the v1.0.10 archive, extract its recordings into ``target`` and verify every one of them."""
    try:
        with urllib.request.urlopen(ARCHIVE_URL, timeout=60) as response:
            archive = response.read()
    except OSError as error:
        raise DataError(missing_message(looked_in, f"download failed: {error}")) from None
    expected = expected_checksums()
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for member in tar.getmembers():
                name = Path(member.name).name
                if member.isfile() and Path(member.name).parent.name == "recordings" and name in expected:
                    data = tar.extractfile(member).read()
                    if hashlib.sha256(data).hexdigest() != expected[name]:
                        raise DataError(f"downloaded {name} does not match its v1.0.10 checksum; try again later")
                    (partial / name).write_bytes(data)
        missing = set(expected) - {p.name for p in partial.iterdir()}
        if missing:
            raise DataError(f"the downloaded archive lacks {len(missing)} recordings (e.g. {min(missing)}); try again")
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
    except (OSError, tarfile.TarError) as error:
        raise DataError(f"cannot unpack {ARCHIVE_URL} into {target.parent}: {error}") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def missing_message(looked_in: list[Path], why: str) -> str:
    places = ", ".join(str(p) for p in looked_in)
    return (
        f"spoken-digit recordings not found (looked in {places}; {why}). Download FSDD v1.0.10 from {ARCHIVE_URL} "
        f"and put its recordings/ folder in {looked_in[0]} or a folder named in extra_data_dirs"
    )
