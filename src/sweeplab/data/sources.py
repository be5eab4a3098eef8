"""sweeplab's built-in image sources: torchvision's MNIST-style datasets (local copies first, then their mirrors) and
scikit-learn's digits. Both implement the interface in ``sweeplab.data.source``: float32 images ``[N, 1, H, W]``
in 0..1 and int64 labels."""
import gzip
import os
import shutil
from pathlib import Path

import torch
from hydra.utils import get_class

from sweeplab.data.source import DataPlaces, LoadedData
from sweeplab.errors import DataError, first_line

Pair = tuple[torch.Tensor, torch.Tensor]


def to_unit_tensor(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, H, W] -> float32 [N, 1, H, W] in 0..1, exactly what ToTensor does to each image."""
    return images.unsqueeze(1).to(torch.float32).div(255)


class TorchvisionSource:
    """A torchvision MNIST-style dataset, read by torchvision's own idx parser.

    Looks for the original files under ``<root>/<Class>/raw`` first, then in ``offline_dirs`` and the
    extra directories (plain or .gz), and only then downloads from the dataset's mirrors.
    """

    def __init__(self, dataset_class: str, offline_dirs: list[str] = (), mirrors: list[str] = ()):
        self.dataset_class = get_class(dataset_class)
        self.offline_dirs = [Path(d) for d in offline_dirs]
        self.mirrors = list(mirrors)  # tried before torchvision's own

    @property
    def name(self) -> str:
        return self.dataset_class.__name__

    def load(self, places: DataPlaces, seed: int = 0) -> LoadedData:
        raw_dir = self.fetch(places)
        root = places.data_dir
        train, test = self._read(root, raw_dir, train=True), self._read(root, raw_dir, train=False)
        return LoadedData(train, test, num_classes=len(self.dataset_class.classes),
                          class_names=list(self.dataset_class.classes))

    def fetch(self, places: DataPlaces) -> Path:
        """Make sure the original files are in ``<data_dir>/<Class>/raw`` (copied or downloaded there); return it."""
        root = places.data_dir
        raw_dir = root / self.name / "raw"
        looked_in = [raw_dir]
        if not self._complete(raw_dir):
            for folder in [*self.offline_dirs, *map(Path, places.extra_dirs)]:
                looked_in.append(folder)
                found = self._find_files(folder)
                if found:
                    self._install(found, raw_dir)
                    break
            else:
                if not places.download:
                    raise DataError(self._missing_message(looked_in, "download=false"))
                self._download(root, looked_in)
        return raw_dir

    def _file_names(self) -> list[str]:
        return [os.path.splitext(url)[0] for url, _md5 in self.dataset_class.resources]

    def _complete(self, raw_dir: Path) -> bool:
        return all((raw_dir / name).is_file() for name in self._file_names())

    def _find_files(self, folder: Path) -> dict[str, Path] | None:
        found = {}
        for name in self._file_names():
            for candidate in (folder / name, folder / f"{name}.gz", folder / self.name / "raw" / name):
                if candidate.is_file():
                    found[name] = candidate
                    break
            else:
                return None
        return found

    def _install(self, found: dict[str, Path], raw_dir: Path) -> None:
        _make_writable_dir(raw_dir)
        for name, source in found.items():
            partial = raw_dir / f".{name}.partial"
            try:
                opener = gzip.open if source.suffix == ".gz" else open
                with opener(source, "rb") as src, open(partial, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (OSError, EOFError) as error:
                partial.unlink(missing_ok=True)
                raise DataError(f"cannot read {source}: {error}; replace the file or remove it") from None
            os.replace(partial, raw_dir / name)

    def _download(self, root: Path, looked_in: list[Path]) -> None:
        _make_writable_dir(root)
        dataset_class = self.dataset_class
        if self.mirrors:
            dataset_class = type(self.name, (dataset_class,), {"mirrors": [*self.mirrors, *dataset_class.mirrors]})
        try:
            dataset_class(str(root), train=True, download=True)
            dataset_class(str(root), train=False, download=True)
        except (OSError, RuntimeError) as error:
            reason = first_line(error)
            raise DataError(self._missing_message(looked_in, f"download failed: {reason}")) from None

    def _missing_message(self, looked_in: list[Path], why: str) -> str:
        places = ", ".join(str(p) for p in looked_in)
        return (
            f"dataset {self.name} not found (looked in {places}; {why}). Put its four *-ubyte.gz files in "
            f"{looked_in[0]} or a folder named in extra_data_dirs, or {offline_alternatives()}"
        )

    def _read(self, root: Path, raw_dir: Path, train: bool) -> Pair:
        try:
            dataset = self.dataset_class(str(root), train=train, download=False)
        except Exception as error:  # torchvision's parser raises bare asserts and RuntimeErrors on bad files
            raise DataError(
                f"dataset files in {raw_dir} are corrupt or truncated ({type(error).__name__}: {error}); "
                f"delete that folder and run again to restore them"
            ) from None
        return to_unit_tensor(dataset.data), dataset.targets.long()


class DigitsSource:
    """scikit-learn's 8×8 digits (pixel values 0..16); a fixed, seeded test split since it ships none."""

    name = "digits"

    def __init__(self, test_size: int = 360):
        self.test_size = test_size

    def fetch(self, places: DataPlaces | None = None) -> None:
        """Nothing to fetch: scikit-learn ships the data."""

    def load(self, places: DataPlaces | None = None, seed: int = 0) -> LoadedData:
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.from_numpy(digits.images).to(torch.float32).div(16).unsqueeze(1)
        labels = torch.from_numpy(digits.target).long()
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
        test, train = order[: self.test_size], order[self.test_size :]
        return LoadedData((images[train], labels[train]), (images[test], labels[test]), num_classes=10,
                          class_names=[str(d) for d in range(10)])


DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def offline_alternatives() -> str:
    """The built-in datasets that train on this machine without a download."""
    if (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file():
        return f"use dataset=fashion_mnist (Debian's copy is in {DEBIAN_FASHION_MNIST}) or dataset=digits, which work offline"
    return "use dataset=digits, which works offline (or apt-get install dataset-fashion-mnist for dataset=fashion_mnist)"


def _make_writable_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(f"cannot create data directory {path} ({error.strerror}); set data_dir=<a writable folder>") from None
    if not os.access(path, os.W_OK):
        raise DataError(f"data directory {path} is not writable; set data_dir=<a writable folder>")
