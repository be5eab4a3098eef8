"""How much can batch size x learning rate gain over the notes' settings at all?  Trains the whole grid, for many
seeds, and prints each configuration's validation (and test) accuracy against batch 128 / Adam 1e-3.

    python bench/landscape.py                   # 16 seeds x 6 batch sizes x 25 learning rates, 10 epochs: a GPU job
    python bench/landscape.py --seeds 42 --per-decade 2 --epochs 2   # a quick look on a CPU
    python bench/landscape.py --from-jsonl bench/landscape-h200.jsonl.gz  # README's tables from the stored run

Every grid point is one FeedForwardNet 784-256-10 trained the way a sweep trial trains it (sweeplab.training.fit):
the seed's validation split (make_splits), weights initialised under torch.manual_seed(seed), the same shuffled
batches in the same order, NLLLoss, Adam, and the best epoch's validation accuracy with the test accuracy of those
weights. To make 2 400 trainings affordable, all models of one batch size train at once: their parameters are
stacked (torch.func.stack_module_state) and the real module runs under vmap; Adam is written out here because
torch.optim.Adam takes one learning rate per parameter tensor, not one per stacked model. First, the script trains
one grid point both ways, with fit and torch.optim.Adam and batched, and prints both accuracies (``--no-check``
skips that).
"""
import argparse
import gzip
import json
import math
import statistics
import time
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from omegaconf import OmegaConf

from sweeplab.building import build
from sweeplab.data import make_splits
from sweeplab.data.source import DataPlaces
from sweeplab.model import FeedForwardNet
from sweeplab.paths import PACKAGE_CONF
from sweeplab.training import fit

PROJECT_ROOT = Path(__file__).resolve().parents[1]

NOTES = (128, 1e-3)  # the notes' batch size and Adam learning rate
BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults


def load(seeds, val_size, device):
    """Each seed's splits of Fashion-MNIST, found the way `dataset=fashion_mnist` finds it (Debian's copy, ...)."""
    dataset = OmegaConf.load(PACKAGE_CONF / "dataset" / "fashion_mnist.yaml")
    data = build(dataset.source).load(DataPlaces(PROJECT_ROOT / "data"))
    train, test = data.train, data.test
    return {seed: make_splits(train, test, val_size or dataset.val_size, seed).to(device) for seed in seeds}


def initial_model(seed, splits):
    torch.manual_seed(seed)  # as sweeplab.job does before building the model
    return FeedForwardNet(splits.in_features, splits.num_classes)


def train_grid(splits, points, batch_size, epochs, device):
    """Train one model per (seed, lr) point at this batch size; return each point's per-epoch val/test accuracy."""
    seeds = list(splits)
    models = [initial_model(seed, splits[seed]) for seed, _ in points]
    params, _ = stack_module_state(models)
    params = {name: p.to(device).detach().requires_grad_() for name, p in params.items()}
    template = models[0].to("meta")
    forward = vmap(lambda p, x: functional_call(template, (p,), (x,)))
    moments = {name: (torch.zeros_like(p), torch.zeros_like(p)) for name, p in params.items()}
    lr = torch.tensor([lr for _, lr in points], device=device)
    row = torch.tensor([seeds.index(seed) for seed, _ in points], device=device)
    images = torch.stack([splits[s].train[0] for s in seeds])  # [seeds, N, 1, 28, 28]
    labels = torch.stack([splits[s].train[1] for s in seeds])
    count = labels.shape[1]
    shuffles = {s: torch.Generator().manual_seed(s) for s in seeds}  # as fit draws its epochs' orders
    val, test = torch.zeros(len(points), epochs), torch.zeros(len(points), epochs)
    diverged = torch.zeros(len(points), dtype=torch.bool, device=device)
    step = 0
    for epoch in range(epochs):
        orders = torch.stack([torch.randperm(count, generator=shuffles[s]) for s in seeds]).to(device)[row]
        loss_sum = torch.zeros(len(points), device=device)
        for start in range(0, count, batch_size):
            index = orders[:, start:start + batch_size]
            x, y = images[row[:, None], index], labels[row[:, None], index]
            losses = nn.functional.nll_loss(forward(params, x).flatten(0, 1), y.flatten(), reduction="none")
            losses = losses.view(y.shape).mean(1)
            grads = torch.autograd.grad(losses.sum(), list(params.values()))
            step += 1
            with torch.no_grad():
                loss_sum += losses * y.shape[1]
                for (name, p), g in zip(params.items(), grads):
                    m, v = moments[name]
                    m.lerp_(g, 1 - BETAS[0])
                    v.mul_(BETAS[1]).addcmul_(g, g, value=1 - BETAS[1])
                    per_model = lr.view(-1, *[1] * (p.dim() - 1)) / (1 - BETAS[0] ** step)
                    p.sub_(per_model * m / ((v / (1 - BETAS[1] ** step)).sqrt() + EPS))
        diverged |= ~torch.isfinite(loss_sum)  # fit stops such a trial: it ends FAIL
        with torch.no_grad():
            for i, seed in enumerate(seeds):
                chosen = (row == i).nonzero().squeeze(1)
                mine = {name: p[chosen] for name, p in params.items()}
                for split, out in ((splits[seed].val, val), (splits[seed].test, test)):
                    x, y = split
                    predictions = forward(mine, x.expand(len(chosen), *x.shape)).argmax(-1)
                    out[chosen.cpu(), epoch] = (predictions == y).float().mean(1).cpu()
    return [None if bad else (val[k].tolist(), test[k].tolist()) for k, bad in enumerate(diverged.tolist())]


def check(splits, seed, epochs, device):
    """One grid point both ways: fit with torch.optim.Adam, and train_grid."""
    model = initial_model(seed, splits[seed]).to(device)
    history = fit(model, torch.optim.Adam(model.parameters(), lr=NOTES[1]), splits[seed], epochs=epochs,
                  batch_size=NOTES[0], seed=seed, progress=False, cuda_graph=False)
    grid = train_grid({seed: splits[seed]}, [(seed, NOTES[1])], NOTES[0], epochs, device)[0][0]
    print(f"check, seed {seed}, batch {NOTES[0]}, lr {NOTES[1]}: val accuracy per epoch, fit "
          f"{[round(m.val_accuracy, 4) for m in history.epochs]}, batched {[round(a, 4) for a in grid]}", flush=True)


def collect(rows):
    """Grid rows -> {(batch_size, lr): {seed: (best val, its test)}}; a diverged point has no entry for its seed."""
    results = {}
    for row in rows:
        seeds = results.setdefault((row["batch_size"], row["lr"]), {})
        if row["curves"]:
            val, test = row["curves"]
            best = max(range(len(val)), key=val.__getitem__)  # fit keeps the first best epoch
            seeds[row["seed"]] = (val[best], test[best])
    return results


def summarize(results, seeds):
    """results: {(batch_size, lr): {seed: (best val, its test)}} -> markdown tables on stdout."""
    notes = results[NOTES]
    gain = lambda key, s, i: 100 * (results[key][s][i] - notes[s][i])  # noqa: E731
    batch_sizes = sorted({b for b, _ in results})
    lrs = sorted({lr for _, lr in results})
    print(f"\nmean over {len(seeds)} seeds of (best val accuracy - the notes' on the same seed), pp; "
          "'-' = diverged on some seed")
    print("| lr | " + " | ".join(f"batch {b}" for b in batch_sizes) + " |")
    print("|---|" + "---:|" * len(batch_sizes))
    for lr in lrs:
        cells = [f"{statistics.mean(gain((b, lr), s, 0) for s in seeds):+.2f}"
                 if len(results[(b, lr)]) == len(seeds) else "-" for b in batch_sizes]
        print(f"| {lr:.1e} | " + " | ".join(cells) + " |")
    complete = [key for key in results if len(results[key]) == len(seeds)]
    ranked = sorted(complete, key=lambda key: -statistics.mean(results[key][s][0] for s in seeds))
    print("\n| best on average | val gain | test gain |\n|---|---:|---:|")
    for key in ranked[:5]:
        cells = []
        for i in (0, 1):
            values = [gain(key, s, i) for s in seeds]
            spread = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):+.2f} ± {spread:.2f} pp")
        print(f"| batch {key[0]}, lr {key[1]:.1e} | " + " | ".join(cells) + " |")
    oracle = []
    for s in seeds:
        key = max((k for k in results if s in results[k]), key=lambda k: results[k][s][0])
        oracle.append((gain(key, s, 0), gain(key, s, 1)))
    print(f"\nbest grid point of each seed, picked by val ({len(results)} points per seed): "
          f"val gain {statistics.mean(v for v, _ in oracle):+.2f} pp, "
          f"test gain {statistics.mean(t for _, t in oracle):+.2f} pp "
          f"(mean over seeds; per seed val {', '.join(f'{v:+.2f}' for v, _ in oracle)})")
    print(f"notes' settings: val {100 * statistics.mean(notes[s][0] for s in seeds):.2f} %, "
          f"test {100 * statistics.mean(notes[s][1] for s in seeds):.2f} % (mean over seeds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 1, 0, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[512, 256, 128, 64, 32, 16])
    parser.add_argument("--per-decade", type=int, default=8, help="learning rates per decade, 1e-4 to 1e-1")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--val-size", type=int, help="default: the dataset config's val_size")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no-check", dest="check", action="store_false")
    parser.add_argument("--jsonl", type=Path, help="also write every grid point's per-epoch accuracies here")
    parser.add_argument("--from-jsonl", type=Path, help="print the tables from an earlier run's --jsonl; train nothing")
    args = parser.parse_args()
    if args.from_jsonl:
        opener = gzip.open if args.from_jsonl.suffix == ".gz" else open
        with opener(args.from_jsonl, "rt") as lines:
            rows = [json.loads(line) for line in lines]
        summarize(collect(rows), list(dict.fromkeys(row["seed"] for row in rows)))
        return
    if NOTES[0] not in args.batch_sizes:
        parser.error(f"--batch-sizes must include the notes' {NOTES[0]}")
    device = torch.device(args.device)
    splits = load(args.seeds, args.val_size, device)
    print(f"Fashion-MNIST, {args.epochs} epochs, {len(args.seeds)} seeds, on {device}", flush=True)
    if args.check:
        check(splits, args.seeds[0], args.epochs, device)
    lrs = [NOTES[1] * 10 ** (k / args.per_decade) for k in range(-args.per_decade, 2 * args.per_decade + 1)]
    points = [(seed, lr) for seed in args.seeds for lr in lrs]
    rows = []
    for batch_size in args.batch_sizes:
        started = time.perf_counter()
        for (seed, lr), curves in zip(points, train_grid(splits, points, batch_size, args.epochs, device)):
            rows.append({"batch_size": batch_size, "lr": lr, "seed": seed, "curves": curves})
            if args.jsonl:
                with args.jsonl.open("a") as out:
                    out.write(json.dumps(rows[-1]) + "\n")
        took = time.perf_counter() - started
        print(f"batch {batch_size}: {len(points)} models x {args.epochs} epochs in {took:.0f} s", flush=True)
    summarize(collect(rows), args.seeds)


if __name__ == "__main__":
    main()
