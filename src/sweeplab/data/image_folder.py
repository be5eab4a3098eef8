"""Images kept the way torchvision's ``ImageFolder`` reads them: one sub-folder per class.

    <root>/train/<class>/<image>  and  <root>/test/<class>/<image>     test_fraction: null (the default)
    <root>/<class>/<image>                                             test_fraction: 0.2 (a fixed, seeded draw)

Images of any size and channel count are converted to ``channels`` (1 = grey, 3 = RGB) and, with
``resize: [H, W]``, resized (bilinear, aspect ratio not kept). The first load decodes every image once into a uint8
cache under ``data_dir`` (see ``image_cache``); every later load maps that cache into memory, so that a dataset
larger than RAM still trains: sweeplab reads and scales one batch at a time.
"""
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from sweeplab.data.image_cache import Items, build_cache, cache_key, open_or_build
from sweeplab.data.source import DataPlaces, LoadedData
from sweeplab.errors import ConfigError, DataError, first_line
from sweeplab.paths import resolve

log = logging.getLogger(__name__)
TEST_SPLIT_SEED = 0  # test_fraction's draw is the same for every job, so test accuracies compare across seeds
LAYOUT = "train/ and test/ folders with one sub-folder of images per class"


@dataclass
class Listing:
    classes: list[str]
    train: Items
    test: Items


class ImageFolderSource:
    name = "image_folder"

    def __init__(self, root: str | None, resize=None, channels: int = 3, test_fraction: float | None = None):
        if not root:
            raise ConfigError(f"dataset.root is not set; set dataset.root=<a folder holding {LAYOUT}>")
        if resize is not None:
            resize = list(resize)
            if len(resize) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in resize):
                raise ConfigError(f"dataset.resize must be null or [H,W], two positive integers (got {resize}); "
                                  f"e.g. dataset.resize=[32,32]")
        if channels not in (1, 3):
            raise ConfigError(f"dataset.channels must be 1 (grey) or 3 (RGB) (got {channels})")
        if test_fraction is not None and not 0 < test_fraction < 1:
            raise ConfigError(f"dataset.test_fraction must be null or between 0 and 1 (got {test_fraction}); "
                              f"e.g. dataset.test_fraction=0.2")
        self.root = resolve(root)
        self.resize = resize
        self.channels = channels
        self.test_fraction = test_fraction

    def fetch(self, places: DataPlaces) -> None:
        """The files are the user's: check the folder's layout, read nothing."""
        self._list()

    def load(self, places: DataPlaces, seed: int) -> LoadedData:
        listing = self._list()
        splits = {"train": listing.train, "test": listing.test}
        settings = {"resize": self.resize, "channels": self.channels, "test_fraction": self.test_fraction}
        folder = Path(places.data_dir) / "image_folder" / f"{self.root.name}-{cache_key(settings, splits, self.root)}"

        def build(folder: Path) -> None:
            log.info("decoding %d images from %s into the cache %s (once)", sum(map(len, splits.values())), self.root,
                     folder)
            build_cache(folder, listing.classes, splits, self._shape(listing), self._decode)

        classes, arrays = open_or_build(folder, build)
        return LoadedData(train=arrays["train"], test=arrays["test"], num_classes=len(classes), class_names=classes)

    def _list(self) -> Listing:
        if not self.root.is_dir():
            raise DataError(f"image folder {self.root} not found; set dataset.root=<a folder holding {LAYOUT}>")
        if self.test_fraction is not None:
            classes = _classes(self.root)
            items = _images(self.root, classes)
            order = torch.randperm(len(items), generator=torch.Generator().manual_seed(TEST_SPLIT_SEED)).tolist()
            test_count = round(self.test_fraction * len(items))
            if not 1 <= test_count < len(items):
                raise ConfigError(f"dataset.test_fraction={self.test_fraction} leaves no test or no training images "
                                  f"of the {len(items)} in {self.root}; choose another fraction")
            test = sorted(order[:test_count])
            train = sorted(order[test_count:])
            return Listing(classes, [items[i] for i in train], [items[i] for i in test])
        for split in ("train", "test"):
            if not (self.root / split).is_dir():
                raise DataError(f"{self.root / split} not found: dataset.root must hold {LAYOUT}, or set "
                                f"dataset.test_fraction=0.2 to draw the test split from class folders in {self.root}")
        classes = _classes(self.root / "train")
        strangers = sorted(set(_classes(self.root / "test")) - set(classes))
        if strangers:
            raise DataError(f"{self.root / 'test'} holds classes that {self.root / 'train'} lacks "
                            f"({', '.join(strangers)}); add their training images or remove those folders")
        return Listing(classes, _images(self.root / "train", classes), _images(self.root / "test", classes))

    def _shape(self, listing: Listing) -> tuple[int, int, int]:
        """[C, H, W] of every image; without ``resize`` all images must share one size (read from headers only)."""
        if self.resize is not None:
            return self.channels, *self.resize
        first, first_size = None, None
        for path, _label in listing.train + listing.test:
            try:
                with Image.open(path) as image:
                    size = image.size
            except (OSError, ValueError) as error:
                raise DataError(f"cannot read image {path} ({first_line(error)}); replace or delete the file") from None
            if first is None:
                first, first_size = path, size
            elif size != first_size:
                raise ConfigError(
                    f"images differ in size: {first} is {_hw(first_size)}, {path} is {_hw(size)} (H×W); set "
                    f"dataset.resize=[H,W] to resize them all, e.g. dataset.resize=[{first_size[1]},{first_size[0]}]"
                )
        return self.channels, first_size[1], first_size[0]

    def _decode(self, path: str) -> np.ndarray:
        """One image as uint8 [C, H, W]."""
        try:
            with Image.open(path) as image:
                image = image.convert("L" if self.channels == 1 else "RGB")
                if self.resize is not None:
                    image = image.resize((self.resize[1], self.resize[0]), Image.Resampling.BILINEAR)
                array = np.asarray(image)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise DataError(f"cannot read image {path} ({first_line(error)}); replace or delete the file") from None
        return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _hw(size: tuple[int, int]) -> str:
    return f"{size[1]}×{size[0]}"


def _classes(folder: Path) -> list[str]:
    try:
        classes, _ = find_classes(folder)
    except FileNotFoundError:
        raise DataError(f"{folder} holds no class sub-folders; put each class's images in a folder of its own "
                        f"({folder}/<class>/<image>), torchvision's ImageFolder layout") from None
    return classes


def _images(folder: Path, classes: list[str]) -> Items:
    items = make_dataset(folder, {c: i for i, c in enumerate(classes)}, IMG_EXTENSIONS, allow_empty=True)
    if not items:
        raise DataError(f"{folder} holds no images ({' '.join(IMG_EXTENSIONS)}) in its class folders; add images "
                        f"or set dataset.root to another folder")
    return items
