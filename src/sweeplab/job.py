"""One training job: config -> data -> model -> loop -> metrics -> tracking -> objective."""
import inspect
import logging
import math
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from sweeplab.building import build
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from sweeplab.data import make_splits
from sweeplab.data.source import DataPlaces, LoadedData
from sweeplab.settings import JobSettings
from sweeplab.training import evaluate, fit

log = logging.getLogger(__name__)
WEIGHTS_FILE = "best.pt"


def describe(cfg: DictConfig) -> dict[str, str]:
    """Short names for tags and run names, derived from what the config builds."""
    return {
        "dataset": str(cfg.dataset.name),
        "model": f"ffn{cfg.model.width}" if "width" in cfg.model else str(cfg.model._target_).rsplit(".", 1)[-1].lower(),
        "optimizer": str(cfg.optimizer._target_).rsplit(".", 1)[-1].lower(),
    }


def run_name(cfg: DictConfig, trial_number: int | None) -> str:
    if cfg.mlflow.run_name:
        return str(cfg.mlflow.run_name)
    names = describe(cfg)
    name = f"{names['dataset']}-{names['model']}-{names['optimizer']}-bs{cfg.batch_size}-lr{cfg.optimizer.lr:.3g}"
    return name if trial_number is None else f"trial-{trial_number}-{name}"


def build_model(cfg: DictConfig, input_shape, num_classes: int) -> torch.nn.Module:
    """The model, given each of the data's facts its constructor names and its config does not set."""
    input_shape = tuple(input_shape)
    facts = {"input_shape": input_shape, "in_features": math.prod(input_shape), "in_channels": input_shape[0],
             "num_classes": num_classes}
    wanted = inspect.signature(get_class(cfg.model._target_)).parameters
    return build(cfg.model, **{k: v for k, v in facts.items() if k in wanted and k not in cfg.model})


def load_trained_model(run_dir: Path) -> tuple[torch.nn.Module, list[int]]:
    """The best weights a finished job saved, in the model its own config describes, and the input shape."""
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    checkpoint = torch.load(run_dir / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    model = build_model(cfg, checkpoint["input_shape"], checkpoint["num_classes"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), checkpoint["input_shape"]


def _data_places(cfg: DictConfig, settings: JobSettings) -> tuple:
    return settings.data_dir, settings.extra_data_dirs, settings.download, cfg.dataset.get("mirrors") or ()


def _new_interface(source) -> bool:  # bridge until every source implements sweeplab.data.source
    return "places" in inspect.signature(source.fetch).parameters


def fetch_dataset(cfg: DictConfig, settings: JobSettings) -> None:
    """Find or download the dataset's files without reading them (a DataError says where it looked)."""
    source = build(cfg.dataset.source)
    if _new_interface(source):
        source.fetch(DataPlaces(settings.data_dir, settings.extra_data_dirs, settings.download))
    else:
        source.fetch(*_data_places(cfg, settings))


def load_data(cfg: DictConfig, settings: JobSettings) -> LoadedData:
    source = build(cfg.dataset.source)
    if _new_interface(source):
        return source.load(DataPlaces(settings.data_dir, settings.extra_data_dirs, settings.download), settings.seed)
    train, test = source.load(*_data_places(cfg, settings))
    return LoadedData(train, test, int(torch.cat([train[1], test[1]]).max()) + 1)


def load_splits(cfg: DictConfig, settings: JobSettings):
    data = load_data(cfg, settings)
    return make_splits(data.train, data.test, settings.val_size, settings.seed).to(settings.device)


def run_job(cfg: DictConfig, output_dir: Path) -> float:
    """Train one configuration; return its best validation accuracy (the sweep's objective)."""
    settings = JobSettings.from_config(cfg)
    # A single job fails fast on an unreachable server; a sweep's trial waits as long as MLflow's own retries would.
    patience_s = 120.0 if cfg.trial.get("trial_id") is not None else 0.0
    client = _tracking().connect(cfg.mlflow.tracking_uri, patience_s=patience_s) if cfg.mlflow.enabled else None
    if settings.threads:
        torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    data = load_data(cfg, settings)
    splits = make_splits(data.train, data.test, settings.val_size, settings.seed).to(settings.device)
    torch.manual_seed(settings.seed)
    model = build_model(cfg, data.input_shape, data.num_classes).to(settings.device)
    optimizer = build(cfg.optimizer)(model.parameters())
    link = _trial_link(cfg.trial)
    run = _start_run(cfg, client, settings, link, output_dir) if client else None
    if link:
        link.remember(output_dir, run.run_id if run else None)

    trained = []

    def on_epoch(metrics):
        trained.append(metrics)
        if run:
            values = {k: v for k, v in vars(metrics).items() if k != "epoch"}
            run.metrics(values, step=metrics.epoch)
        if link:
            # The best validation accuracy so far: the trial's own objective, so a one-epoch dip does not prune it.
            link.report(metrics.epoch, max(m.val_accuracy for m in trained))

    try:
        with link or nullcontext():
            history = fit(
                model, optimizer, splits, epochs=settings.epochs, batch_size=settings.batch_size,
                seed=settings.seed, progress=settings.progress, on_epoch=on_epoch, cuda_graph=settings.cuda_graph,
                augment=data.augment,
            )
        model.load_state_dict(history.best_state)
        test_loss, test_accuracy = evaluate(model, *splits.test)
        torch.save(
            {"state_dict": history.best_state, "input_shape": list(splits.train[0].shape[1:]),
             "in_features": splits.in_features, "num_classes": data.num_classes},
            output_dir / WEIGHTS_FILE,
        )
        best = history.best
        log.info(
            "best val acc %.4f (epoch %d), test acc %.4f, %.1f s on %s",
            best.val_accuracy, best.epoch, test_accuracy, time.perf_counter() - started, settings.device,
        )
        if run:
            run.metrics({
                "best_val_accuracy": best.val_accuracy, "best_epoch": best.epoch, "test_accuracy": test_accuracy,
                "test_loss": test_loss, "train_time_s": sum(m.epoch_time_s for m in history.epochs),
                "epochs_trained": len(history.epochs),
            })
            run.artifact(output_dir / WEIGHTS_FILE)
            run.artifact(output_dir / ".hydra", "hydra")
            run.tags({"sweeplab.state": "COMPLETE"})
            run.end("FINISHED")
        return best.val_accuracy
    except _trial_pruned() as pruned:
        if run:
            run.metrics({"epochs_trained": len(trained)})
            run.tags({"sweeplab.state": "PRUNED"})
            run.end("KILLED", str(pruned))
        raise
    except BaseException as error:
        if run:
            run.tags({"sweeplab.state": "FAIL"})
            run.end("FAILED", f"{type(error).__name__}: {error}")
        raise


def _tracking():
    """sweeplab.tracking, which loads MLflow (~2.5 s of imports): only jobs that track pay for it."""
    from sweeplab import tracking

    return tracking


def _trial_link(trial_cfg):
    """The link to this job's Optuna trial, or None; Optuna (~0.5 s of imports) loads only inside a trial."""
    if trial_cfg.get("trial_id") is None:
        return None
    from sweeplab.sweep.trial_link import TrialLink

    return TrialLink.from_config(trial_cfg)


def _trial_pruned() -> type[BaseException] | tuple:
    """optuna.TrialPruned where Optuna is loaded; where it is not, nothing can have raised it."""
    optuna = sys.modules.get("optuna")
    return optuna.TrialPruned if optuna else ()


def _start_run(cfg, client, settings, link, output_dir) -> "tracking.RunLog":
    tracking = _tracking()
    experiment_id = tracking.get_or_create_experiment(client, cfg.mlflow.experiment, cfg.mlflow.artifact_location)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("trial")
    tags = {**describe(cfg), "seed": settings.seed, "mlflow.source.git.commit": tracking.git_commit(),
            "sweeplab.output_dir": str(output_dir), "device": str(settings.device)}
    if link:
        tags.update({"optuna.study": link.study.study_name, "optuna.trial": link.number,
                     "optuna.sampler": link.study.user_attrs.get("sweeplab.sampler")})
    run = tracking.RunLog.start(
        client, experiment_id, run_name(cfg, link.number if link else None), tracking.flatten(resolved), tags,
        parent_run_id=link.parent_run_id if link else None,
    )
    client.log_text(run.run_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    return run
