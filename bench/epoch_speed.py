"""Epoch time and accuracy: the notes' DataLoader flow against sweeplab's tensor path, in one process.

    python bench/epoch_speed.py                 # 10 epochs each, Fashion-MNIST, batch 128, Adam 1e-3
    python bench/epoch_speed.py --epochs 2      # a quick look

Both flows train the same FeedForwardNet 784-256-10 (same initial weights), with NLLLoss, Adam lr 1e-3 and
batch 128, on the same real Fashion-MNIST files (found or installed by sweeplab's TorchvisionSource) and the
same seeded 50 000 / 10 000 train / validation split, with the same torch thread count:

- the notes' flow: ``torchvision.datasets.FashionMNIST(..., transform=ToTensor())`` restricted to the training
  indices, ``DataLoader(batch_size=128)`` shuffling every epoch (the same seeded order as sweeplab's), and
  ``torch.optim.Adam(params, lr=1e-3)``, in the notes' loop. Its epoch time covers the training pass only.
- sweeplab's path: ``sweeplab.data.make_splits`` + ``sweeplab.training.fit``, with the optimizer built from
  sweeplab's own ``src/sweeplab/conf/optimizer/adam.yaml``. Its epoch time is fit's own: the training pass plus train
  metrics and a validation pass.

- the arithmetic floor: what any implementation of this training must compute — forward, loss, backward and a fused
  Adam step per batch, on batches already in place as contiguous float slices (no shuffle, no gather, no metrics,
  no validation). The notes' time over the floor is the largest ratio this host allows.

The epochs alternate (sweeplab epoch k, then notes epoch k, then the floor, from fit's ``on_epoch`` hook), so that a
noisy, shared machine slows all alike. Validation accuracy after the last epoch is measured by the same function for both.
"""
import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, Sampler, Subset
from torchvision.transforms import ToTensor

from sweeplab.building import build
from sweeplab.data.source import DataPlaces
from sweeplab.data import make_splits
from sweeplab.data.sources import TorchvisionSource
from sweeplab.model import FeedForwardNet
from sweeplab.paths import PACKAGE_CONF
from sweeplab.training import evaluate, fit, to_unit

PROJECT_ROOT = Path(__file__).resolve().parents[1]

FASHION = "torchvision.datasets.FashionMNIST"
SYSTEM_COPY = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist


def notes_epoch(model, loader, loss_fn, optimiser, device) -> None:
    """The notes' train_one_epoch."""
    model.train()
    for inputs, targets in loader:
        inputs, targets = inputs.to(device), targets.to(device)
        predictions = model(inputs)
        loss = loss_fn(predictions, targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


class SameShuffle(Sampler):
    """What ``DataLoader(shuffle=True)`` does (a new seeded permutation every epoch), drawn the way
    sweeplab.training.fit draws its own: both flows then see the same batches in the same order, and their
    accuracies can differ only through arithmetic (with the same optimizer they come out identical)."""

    def __init__(self, count: int, seed: int):
        self.count = count
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        return iter(torch.randperm(self.count, generator=self.generator).tolist())


def split_indices(count: int, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """make_splits' seeded split, as indices for the notes' Subset (checked against make_splits below)."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return order[val_size:], order[:val_size]


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{os.cpu_count()}-core {platform.machine()} CPU"


def floor_epoch(model, optimizer, images, labels, batch_size: int) -> None:
    for start in range(0, len(labels), batch_size):
        x, y = images[start:start + batch_size], labels[start:start + batch_size]
        for p in model.parameters():
            p.grad = None
        nn.functional.nll_loss(model(x), y).backward()
        optimizer.step()


def sweeplab_optimizer(params, lr: float):
    cfg = OmegaConf.load(PACKAGE_CONF / "optimizer" / "adam.yaml")
    cfg.lr = lr
    return build(cfg)(params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--val-size", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads, both flows")
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / "data")
    parser.add_argument("--notes-optimizer", action="store_true",
                        help="give sweeplab's path the notes' torch.optim.Adam too (isolates the data path)")
    parser.add_argument("--device", default="cpu",
                        help="cpu or cuda[:N]; on CUDA the script also counts fit's host synchronisations")
    parser.add_argument("--eager", action="store_true", help="on CUDA, launch each step's kernels one by one "
                        "instead of replaying a CUDA graph")
    parser.add_argument("--markdown", type=Path, help="also write the table and command to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    source = TorchvisionSource(FASHION, offline_dirs=[SYSTEM_COPY])
    data = source.load(DataPlaces(args.data_dir))
    train, test = data.train, data.test
    splits = make_splits(train, test, args.val_size, args.seed)
    fit_index, val_index = split_indices(len(train[1]), args.val_size, args.seed)
    assert torch.equal(splits.val[1], train[1][val_index]) and torch.equal(splits.train[1], train[1][fit_index])

    # The notes' flow on the same files and the same training indices.
    dataset = source.dataset_class(str(args.data_dir), train=True, download=False, transform=ToTensor())
    loader = DataLoader(Subset(dataset, fit_index.tolist()), batch_size=args.batch_size,
                        sampler=SameShuffle(len(fit_index), args.seed))
    assert torch.equal(loader.dataset[0][0], splits.train[0][0]), "ToTensor and sweeplab's tensors differ"

    device = torch.device(args.device)
    splits = splits.to(device)  # sweeplab keeps every split on the device (the notes move each batch there)
    torch.manual_seed(args.seed)
    notes_model = FeedForwardNet(splits.in_features, splits.num_classes, 256).to(device)
    torch.manual_seed(args.seed)
    sweeplab_model = FeedForwardNet(splits.in_features, splits.num_classes, 256).to(device)
    on_cuda = device.type == "cuda"
    notes_optimiser = torch.optim.Adam(notes_model.parameters(), lr=args.lr)
    loss_fn = nn.NLLLoss()

    notes_times, floor_times = [], []
    torch.manual_seed(args.seed)
    floor_model = FeedForwardNet(splits.in_features, splits.num_classes, 256).to(device)
    floor_optimizer = torch.optim.Adam(floor_model.parameters(), lr=args.lr, fused=True)
    floor_images = to_unit(splits.train[0][:], device).contiguous()
    floor_labels = splits.train[1][:].to(device)

    def after_sweeplab_epoch(metrics) -> None:
        if on_cuda:
            torch.cuda.set_sync_debug_mode(0)  # count sweeplab's synchronisations only
        started = time.perf_counter()
        notes_epoch(notes_model, loader, loss_fn, notes_optimiser, device)
        if on_cuda:
            torch.cuda.synchronize()
        notes_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        floor_epoch(floor_model, floor_optimizer, floor_images, floor_labels, args.batch_size)
        if on_cuda:
            torch.cuda.synchronize()
        floor_times.append(time.perf_counter() - started)
        print(f"epoch {metrics.epoch:2d}: sweeplab {metrics.epoch_time_s:.3f} s (val acc {metrics.val_accuracy:.4f})"
              f" | notes' flow {notes_times[-1]:.3f} s", flush=True)
        if on_cuda:
            torch.cuda.set_sync_debug_mode("warn")

    if args.notes_optimizer:
        optimizer, optimizer_name = torch.optim.Adam(sweeplab_model.parameters(), lr=args.lr), "`torch.optim.Adam`"
    else:
        optimizer = sweeplab_optimizer(sweeplab_model.parameters(), args.lr)
        optimizer_name = "`src/sweeplab/conf/optimizer/adam.yaml`"
    with warnings.catch_warnings(record=True) as syncs:
        warnings.simplefilter("always")
        if on_cuda:
            torch.cuda.set_sync_debug_mode("warn")  # every host synchronisation inside fit becomes a warning
        history = fit(
            sweeplab_model, optimizer, splits, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
            progress=False, on_epoch=after_sweeplab_epoch, cuda_graph=not args.eager,
        )
        if on_cuda:
            torch.cuda.set_sync_debug_mode(0)
    if on_cuda:
        sync_count = sum("synchroniz" in str(w.message) for w in syncs)
        steps = -(-len(splits.train[1]) // args.batch_size)
        print(f"host synchronisations inside fit: {sync_count / args.epochs:.1f} per epoch ({steps} steps per epoch)")
    sweeplab_times = [m.epoch_time_s for m in history.epochs]
    sweeplab_accuracy = history.epochs[-1].val_accuracy
    _, notes_accuracy = evaluate(notes_model, *splits.val)

    step_kind = (" (eager steps)" if args.eager else " (CUDA graph steps)") if on_cuda else ""
    same_weights = all(torch.equal(a, b) for a, b in zip(notes_model.state_dict().values(),
                                                          sweeplab_model.state_dict().values()))
    notes_median, sweeplab_median = statistics.median(notes_times), statistics.median(sweeplab_times)
    command = "python bench/epoch_speed.py" + "".join(f" {a}" for a in sys.argv[1:])
    lines = [
        f"`{command}` — Fashion-MNIST, 50 000 train / 10 000 validation images, FeedForwardNet 784-256-10, "
        f"NLLLoss, Adam lr {args.lr:g}, batch {args.batch_size}, {args.epochs} epochs, {args.threads} torch threads, "
        f"{describe(device)}, torch {torch.__version__}",
        "",
        f"| flow | per-epoch time (median of {args.epochs}) | fastest epoch "
        f"| val accuracy after {args.epochs} epochs |",
        "|---|---:|---:|---:|",
        f"| notes' flow: FashionMNIST + ToTensor + DataLoader, `torch.optim.Adam` | {notes_median:.2f} s | "
        f"{min(notes_times):.2f} s | {notes_accuracy:.2%} |",
        f"| sweeplab: `make_splits` + `fit`{step_kind}, {optimizer_name} | {sweeplab_median:.2f} s | "
        f"{min(sweeplab_times):.2f} s | {sweeplab_accuracy:.2%} |",
        f"| ratio / difference | **{notes_median / sweeplab_median:.1f}× faster** | "
        f"{min(notes_times) / min(sweeplab_times):.1f}× | {100 * (sweeplab_accuracy - notes_accuracy):+.2f} pp |",
        f"| arithmetic floor: forward, backward, fused Adam on contiguous batches, nothing else | "
        f"{statistics.median(floor_times):.2f} s | {min(floor_times):.2f} s | |",
        f"| the largest ratio this host allows (notes' flow / floor) | "
        f"{notes_median / statistics.median(floor_times):.1f}× | | |",
        "",
        f"(sweeplab's epoch includes its validation pass and train metrics; the notes' epoch is the training pass "
        f"only. Both saw the same batches in the same order; final weights "
        f"{'bit-identical' if same_weights else 'differ (different optimizer arithmetic)'}. "
        f"Load average at the end: {os.getloadavg()[0]:.2f}.)",
    ]
    print("\n" + "\n".join(lines))
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
