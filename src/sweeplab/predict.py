"""`python -m sweeplab.predict <run output dir> [--n 10]`: a finished run's best weights against test labels;
`python -m sweeplab.predict <run output dir> clip.wav ...`: the class it predicts for each recording, with its
probability (for datasets whose source reads single files, such as spoken_digits)."""
import argparse
import pickle
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from sweeplab.building import build
from sweeplab.errors import SweeplabError, first_line
from sweeplab.job import WEIGHTS_FILE, load_splits, load_trained_model
from sweeplab.settings import JobSettings


def _trained(run_dir: Path):
    config_file, weights_file = run_dir / ".hydra" / "config.yaml", run_dir / WEIGHTS_FILE
    for path in (run_dir, config_file, weights_file):
        if not path.exists():
            raise SweeplabError(f"{path} not found; pass the output folder of a finished run (it holds {WEIGHTS_FILE})")
    try:
        model, _input_shape = load_trained_model(run_dir)  # built with job.build_model from the run's config
    except (OSError, RuntimeError, EOFError, KeyError, TypeError, pickle.UnpicklingError) as error:
        raise SweeplabError(f"cannot load {weights_file}: {first_line(error)}") from None
    cfg = OmegaConf.load(config_file)
    return model, cfg, JobSettings.from_config(cfg)


def predict(run_dir: Path, n: int) -> list[tuple[int, int, int]]:
    """(index, predicted, true) for the first n images of the run's test split."""
    model, cfg, settings = _trained(run_dir)
    images, labels = (t[:n] for t in load_splits(cfg, settings).test)
    with torch.inference_mode():
        predicted = model.to(settings.device)(images).argmax(1)
    return [(i, int(p), int(t)) for i, (p, t) in enumerate(zip(predicted, labels))]


def predict_files(run_dir: Path, paths: list[Path]) -> list[tuple[Path, int, float]]:
    """(path, predicted class, its probability) for each file, read by the run's own data source."""
    model, cfg, _settings = _trained(run_dir)
    source = build(cfg.dataset.source)
    if not hasattr(source, "features_of"):
        raise SweeplabError(f"dataset {cfg.dataset.name} cannot read single files; pass no file to predict on its test split")
    with torch.inference_mode():
        probabilities = model(torch.cat([source.features_of(path) for path in paths])).exp()
    best, classes = probabilities.max(1)
    return [(path, int(c), float(p)) for path, c, p in zip(paths, classes, best)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a run's output folder, e.g. outputs/2026-01-01/12-00-00")
    parser.add_argument("files", type=Path, nargs="*", help="recordings to classify, e.g. 7_theo_0.wav")
    parser.add_argument("--n", type=int, default=10, help="how many test images to show (default 10)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be >= 1")
    try:
        if args.files:
            for path, predicted, probability in predict_files(args.run_dir, args.files):
                print(f"{path}: {predicted} (probability {probability:.3f})")
            return
        rows = predict(args.run_dir, args.n)
    except SweeplabError as error:
        sys.stderr.write(f"error: {error}\n")
        sys.exit(2)
    print(f"{'index':>5}  {'predicted':>9}  {'true':>4}")
    for index, predicted, true in rows:
        print(f"{index:>5}  {predicted:>9}  {true:>4}{'' if predicted == true else '  x'}")
    correct = sum(p == t for _, p, t in rows)
    print(f"accuracy {correct}/{len(rows)} = {correct / len(rows):.3f}")


if __name__ == "__main__":
    main()
