"""`python -m sweeplab.predict <run output dir> [--n 10] [--trust]`: a finished run's best weights against test labels.

A run folder (or an MLflow artifact) may come from someone else: its config builds only sweeplab's, torch's and
torchvision's own classes unless --trust says that whoever wrote it may run code here.

`python -m sweeplab.predict <run output dir> clip.wav ...`: the class the run predicts for each file, with its
probability (for datasets whose source reads single files, such as spoken_digits).
"""
import argparse
import fnmatch
import pickle
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from sweeplab.building import SAFE_TARGETS, build
from sweeplab.checkpoint import WEIGHTS_FILE, load_trained_model
from sweeplab.errors import ConfigError, SweeplabError, first_line
from sweeplab.data.loading import load_data
from sweeplab.settings import JobSettings
from sweeplab.training import to_unit

SAFE_CLASSES = (*SAFE_TARGETS, "torchvision.datasets.*")  # dataset_class keys name a class to construct, too


def untrusted_targets(config) -> list[str]:
    """Every class or function the config would have sweeplab import, outside the safe list."""
    found = []
    if isinstance(config, dict):
        for key, value in config.items():
            if (key == "_target_" or key.endswith("_class")) and isinstance(value, str):
                if not any(fnmatch.fnmatchcase(value, pattern) for pattern in SAFE_CLASSES):
                    found.append(value)
            else:
                found += untrusted_targets(value)
    elif isinstance(config, list):
        for value in config:
            found += untrusted_targets(value)
    return found


def _trained(run_dir: Path, trust: bool):
    """The run's model with its best weights, its config and settings (checked before anything is built)."""
    config_file, weights_file = run_dir / ".hydra" / "config.yaml", run_dir / WEIGHTS_FILE
    for path in (run_dir, config_file, weights_file):
        if not path.exists():
            raise SweeplabError(f"{path} not found; pass the output folder of a finished run (it holds {WEIGHTS_FILE})")
    cfg = OmegaConf.load(config_file)
    foreign = untrusted_targets(OmegaConf.to_container(cfg))
    if foreign and not trust:
        raise ConfigError(f"{config_file} names {', '.join(sorted(set(foreign)))}, which sweeplab does not import from "
                          f"a config it did not write; pass --trust if you trust whoever wrote {run_dir}")
    try:
        model, _facts = load_trained_model(run_dir)
    except (OSError, RuntimeError, EOFError, KeyError, TypeError, pickle.UnpicklingError) as error:
        raise SweeplabError(f"cannot load {weights_file}: {first_line(error)}") from None
    return model, cfg, JobSettings.from_config(cfg)


def predict(run_dir: Path, n: int, trust: bool = False) -> list[tuple[int, int, int]]:
    """(index, predicted, true) for the first n inputs of the run's test split."""
    model, cfg, settings = _trained(run_dir, trust)
    splits, _data = load_data(cfg, settings)
    inputs, labels = (t[:n] for t in splits.test)
    with torch.inference_mode():
        inputs = to_unit(inputs, settings.device)
        predicted = model.to(settings.device)(inputs).argmax(1)
    return [(i, int(p), int(t)) for i, (p, t) in enumerate(zip(predicted, labels))]


def predict_files(run_dir: Path, paths: list[Path], trust: bool = False) -> list[tuple[Path, str, float]]:
    """(path, predicted class name, its probability) for each file, read by the run's own data source."""
    model, cfg, _settings = _trained(run_dir, trust)
    source = build(cfg.dataset.source, key="dataset.source")
    if not hasattr(source, "features_of"):
        raise SweeplabError(f"dataset {cfg.dataset.name} cannot read single files; pass no file to predict on its test split")
    with torch.inference_mode():
        probabilities = model.cpu()(torch.cat([source.features_of(path) for path in paths])).exp()
    best, classes = probabilities.max(1)
    names = getattr(source, "class_names", None) or [str(c) for c in range(probabilities.shape[1])]
    return [(path, names[int(c)], float(p)) for path, c, p in zip(paths, classes, best)]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a run's output folder, e.g. outputs/2026-01-01/12-00-00")
    parser.add_argument("files", type=Path, nargs="*", help="files to classify, e.g. 7_theo_0.wav")
    parser.add_argument("--n", type=int, default=10, help="how many test inputs to show (default 10)")
    parser.add_argument("--trust", action="store_true",
                        help="let the run's config import classes outside sweeplab, torch and torchvision")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be >= 1")
    try:
        if args.files:
            for path, predicted, probability in predict_files(args.run_dir, args.files, args.trust):
                print(f"{path}: {predicted} (probability {probability:.3f})")
            return
        rows = predict(args.run_dir, args.n, args.trust)
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
