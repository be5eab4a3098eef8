"""The image_folder cache: decoding a folder of PNGs once against reading the memory-mapped cache back, in one run.

    python bench/image_cache.py                      # 5 000 train + 1 000 test Fashion-MNIST images as PNGs
    python bench/image_cache.py --train 20000 --resize 32 32

Writes Fashion-MNIST's first images (Debian's dataset-fashion-mnist files) as PNGs into a temporary folder in
torchvision's ImageFolder layout, then times ``ImageFolderSource.load`` twice on a fresh ``data_dir``: the first
load lists the files and decodes every image into the uint8 cache; the second lists and stats the files (the cache
key) and maps the cache. Then it checks that the training inputs ``fit`` starts from are still the memory map (no
copy), and times one training epoch from the map against one from the same images as float32 in RAM.
"""
import argparse
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sweeplab.data import make_splits
from sweeplab.data.image_cache import mapped_file
from sweeplab.data.image_folder import ImageFolderSource
from sweeplab.data.source import DataPlaces
from sweeplab.model import FeedForwardNet
from sweeplab.training import fit

FASHION = Path("/usr/share/datasets/fashion-mnist")
CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "boot"]


def read_idx(path: Path, header: int) -> np.ndarray:
    with gzip.open(path, "rb") as file:
        return np.frombuffer(file.read(), dtype=np.uint8, offset=header)


def write_pngs(root: Path, train: int, test: int) -> None:
    for split, prefix, count in (("train", "train", train), ("test", "t10k", test)):
        images = read_idx(FASHION / f"{prefix}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)[:count]
        labels = read_idx(FASHION / f"{prefix}-labels-idx1-ubyte.gz", 8)[:count]
        for name in CLASSES:
            (root / split / name).mkdir(parents=True)
        for i, (image, label) in enumerate(zip(images, labels)):
            Image.fromarray(image).save(root / split / CLASSES[label] / f"{i:06d}.png")


def anonymous_mb() -> float:
    """This process's private memory (RssAnon): a copy of the data would land here, pages of a memory map do not."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon in /proc/self/status")


def epoch_time(train, test, seed: int) -> float:
    splits = make_splits(train, test, 1000, seed)
    torch.manual_seed(seed)
    model = FeedForwardNet(splits.in_features, splits.num_classes, 256)
    history = fit(model, torch.optim.Adam(model.parameters(), 1e-3), splits, epochs=1, batch_size=128, seed=seed,
                  progress=False)
    return history.epochs[0].epoch_time_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=5000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--resize", type=int, nargs=2, metavar=("H", "W"))
    parser.add_argument("--channels", type=int, default=1, choices=(1, 3))
    parser.add_argument("--repeats", type=int, default=5, help="second loads to time (median)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as temp:
        root, data_dir = Path(temp) / "fashion-png", Path(temp) / "data"
        write_pngs(root, args.train, args.test)
        source = ImageFolderSource(str(root), resize=args.resize, channels=args.channels)
        started = time.perf_counter()
        source.load(DataPlaces(data_dir), seed=0)
        first = time.perf_counter() - started
        seconds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            data = source.load(DataPlaces(data_dir), seed=0)
            seconds.append(time.perf_counter() - started)
        second = statistics.median(seconds)
        train_mb = data.train[0].numel() / 1e6
        cache_mb = sum(f.stat().st_size for f in data_dir.rglob("*.npy")) / 1e6

        before = anonymous_mb()
        splits = make_splits(data.train, data.test, 1000, seed=0)
        grown = anonymous_mb() - before
        mapped = mapped_file(splits.train[0].base)
        assert mapped and mapped.endswith("train_images.npy"), "fit would start from a copy, not the memory map"
        epoch_time(data.train, data.test, 0)  # warms the page cache for the timed epochs
        in_ram = (data.train[0].float().div(255), data.train[1]), (data.test[0].float().div(255), data.test[1])
        from_map, from_ram = [], []
        for seed in range(3):  # alternating, so that a noisy machine slows both alike
            from_map.append(epoch_time(data.train, data.test, seed))
            from_ram.append(epoch_time(*in_ram, seed))

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    shape = "×".join(map(str, data.input_shape))
    net = f"{splits.in_features}-256-{splits.num_classes}"
    count = args.train + args.test
    print(f"`python bench/image_cache.py{''.join(' ' + a for a in sys.argv[1:])}` — {count} Fashion-MNIST PNGs "
          f"({args.train} train / {args.test} test) → cache {cache_mb:.1f} MB of uint8 [{shape}], "
          f"{os.cpu_count()} CPU cores, {args.threads} torch thread(s), commit {commit}\n")
    print("| step | time | ratio |\n|---|---:|---:|")
    print(f"| first load: list, decode {count} PNGs, write the cache | {first:.3f} s | 1 |")
    print(f"| second load: list + stat the files, map the cache (median of {args.repeats}) | {second:.4f} s "
          f"| **{first / second:.0f}× faster** |")
    print(f"| training epoch (batch 128, {net}) from the memory map, uint8 scaled per batch (best of 3) "
          f"| {min(from_map):.3f} s | {min(from_map) / min(from_ram):.2f}× the float32-in-RAM epoch |")
    print(f"| training epoch from the same images as float32 in RAM (best of 3) | {min(from_ram):.3f} s | 1 |")
    print(f"\nfit's training inputs: a view of the memory map {Path(mapped).name} (not a copy); make_splits grew "
          f"private memory by {grown:.1f} MB (the training images: {train_mb:.1f} MB as uint8, "
          f"{4 * train_mb:.1f} MB as float32). "
          f"Load average at the end: {os.getloadavg()[0]:.2f}.")


if __name__ == "__main__":
    main()
