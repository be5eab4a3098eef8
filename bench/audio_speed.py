"""The series' audio flow against sweeplab's, in one process, on FSDD's training recordings.

Series: a Dataset whose __getitem__ reads the WAV and computes its log-mel spectrogram, DataLoader(batch_size=128)
without shuffling, the CNN, Adam 1e-3, NLLLoss. sweeplab: SpokenDigitsSource (features cached on disk) and
training.fit on whole tensors. Both train on the same recordings (sweeplab's training split minus validation).
Prints per-epoch times, their ratio, and how much of sweeplab's epoch is data handling (batch gathering).

    PYTHONPATH=src python bench/audio_speed.py --epochs 3 --threads 2
"""
import argparse
import platform
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from sweeplab.data import make_splits
from sweeplab.data.audio.features import log_mel
from sweeplab.data.audio.wav import fit_length, read_wav
from sweeplab.data.source import DataPlaces
from sweeplab.data.spoken_digits import SpokenDigitsSource
from sweeplab.model import CNN
from sweeplab.training import fit

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FSDD = PROJECT_ROOT.parent / "shared" / "data" / "fsdd"


class SeriesDataset(Dataset):
    """The series' Dataset: one file read and transformed per item."""

    def __init__(self, recordings, settings):
        self.recordings, self.settings = recordings, settings

    def __len__(self):
        return len(self.recordings)

    def __getitem__(self, index):
        recording = self.recordings[index]
        clip = fit_length(read_wav(recording.path, self.settings.sample_rate), self.settings.clip_samples)
        return log_mel(clip[None], self.settings)[0], recording.digit


def series_epochs(dataset, epochs: int, seed: int) -> list[float]:
    torch.manual_seed(seed)
    model = CNN(dataset.settings.shape, 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(dataset, batch_size=128)
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        for inputs, targets in loader:
            loss = torch.nn.functional.nll_loss(model(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - started)
    return times


def data_handling_s(images: torch.Tensor, batch_size: int, seed: int) -> float:
    """One epoch of what fit does to the data alone: shuffle and gather every batch."""
    started = time.perf_counter()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    for start in range(0, len(images), batch_size):
        images.index_select(0, order[start:start + batch_size]).sum()  # touch it, as the first conv would
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / "data")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    source = SpokenDigitsSource(offline_dirs=[str(FSDD)])
    places = DataPlaces(args.data_dir, download=False)
    recordings = [r for r in source.fetch(places) if r.take >= 5]
    started = time.perf_counter()
    data = source.load(places, seed=42)
    load_s = time.perf_counter() - started
    splits = make_splits(data.train, data.test, 300, seed=42)
    indices = make_splits((torch.arange(len(recordings)), data.train[1]), data.test, 300, seed=42).train[0]
    series = series_epochs(SeriesDataset([recordings[i] for i in indices], source.features), args.epochs, 42)
    torch.manual_seed(42)
    model = CNN(data.input_shape, 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    ours = [m.epoch_time_s for m in fit(model, optimizer, splits, epochs=args.epochs, batch_size=128, seed=42,
                                        progress=False).epochs]
    handling = data_handling_s(splits.train[0], 128, 42)
    median = lambda xs: sorted(xs)[len(xs) // 2]  # noqa: E731
    print(f"{platform.processor() or platform.machine()}, {args.threads} threads, torch {torch.__version__}, "
          f"{len(indices)} training recordings, input {list(data.input_shape)}, batch 128")
    print(f"series' flow per epoch (s): {', '.join(f'{t:.2f}' for t in series)}")
    print(f"sweeplab per epoch (s):     {', '.join(f'{t:.2f}' for t in ours)}  (includes validation)")
    print(f"ratio series/sweeplab (medians): {median(series) / median(ours):.2f}x")
    print(f"sweeplab data handling: {handling:.3f} s per epoch = {100 * handling / median(ours):.1f} % of its epoch; "
          f"loading the cached features once: {load_s:.2f} s")


if __name__ == "__main__":
    main()
