"""One training job: config -> data -> model -> loop -> metrics -> tracking -> objective."""
import logging
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from sweeplab import checkpoint
from sweeplab.building import build, build_model
from sweeplab.data import make_splits
from sweeplab.data.source import DataPlaces, LoadedData
from sweeplab.errors import ConfigError
from sweeplab.labels import RunLabels
from sweeplab.objective import Objective
from sweeplab.settings import JobSettings
from sweeplab.training import fit, evaluate

log = logging.getLogger(__name__)
WEIGHTS_FILE = checkpoint.WEIGHTS_FILE


def data_places(settings: JobSettings) -> DataPlaces:
    return DataPlaces(settings.data_dir, settings.extra_data_dirs, settings.download)


def fetch_dataset(cfg: DictConfig, settings: JobSettings) -> None:
    """Find or download the dataset's files without reading them (a DataError says where it looked)."""
    build(cfg.dataset.source, key="dataset.source").fetch(data_places(settings))


def load_data(cfg: DictConfig, settings: JobSettings):
    """The dataset's splits on the job's device, with the facts a model may be built from."""
    data: LoadedData = build(cfg.dataset.source, key="dataset.source").load(data_places(settings), settings.split_seed)
    splits = make_splits(data.train, data.test, settings.val_size, settings.split_seed).to(settings.device)
    return splits, data


def data_facts(data: LoadedData) -> dict:
    shape = data.input_shape
    return {"input_shape": shape, "in_features": int(torch.Size(shape).numel()), "in_channels": shape[0] if shape else 1,
            "num_classes": data.num_classes}


def check_model_output(model: torch.nn.Module, inputs: torch.Tensor, num_classes: int, loss_fn) -> None:
    """One small batch through the model before training: its output must be [batch, num_classes], and NLLLoss
    needs log-probabilities (a model emitting logits wants loss=cross_entropy)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        output = model(inputs)
    model.train(was_training)
    if not isinstance(output, torch.Tensor) or output.shape != (len(inputs), num_classes):
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ConfigError(
            f"the model's output for a batch of {len(inputs)} is {shape}, not ({len(inputs)}, {num_classes}) for this "
            f"dataset's {num_classes} classes; make its last layer emit {num_classes} values per input"
        )
    if isinstance(loss_fn, torch.nn.NLLLoss) and not torch.allclose(output.exp().sum(1), torch.ones(len(inputs)).to(output), atol=1e-3):
        raise ConfigError("loss=nll needs log-probabilities, and the model's outputs are not (no LogSoftmax at its end); "
                          "use loss=cross_entropy for a model that emits logits")


def run_job(cfg: DictConfig, output_dir: Path, labels: RunLabels | None = None, trial=None) -> float:
    """Train one configuration; return the objective: its best epoch's value of ``objective.metric``.

    ``trial``, in a sweep, is the link to this job's Optuna trial: ``report(epoch, value)`` (raises ``trial.Pruned``
    to stop), ``remember(output_dir, run_id)``, ``number``, ``study_name``, ``sampler_name``, ``parent_run_id``."""
    settings = JobSettings.from_config(cfg)
    objective = Objective.from_config(cfg.objective)
    labels = labels or RunLabels.from_config(cfg)
    # A single job fails fast on an unreachable server; a sweep's trial waits as long as MLflow's own retries would.
    client = _tracking().connect(cfg.mlflow.tracking_uri, patience_s=120.0 if trial else 0.0) if cfg.mlflow.enabled else None
    if settings.threads:
        torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    splits, data = load_data(cfg, settings)
    facts = data_facts(data)
    torch.manual_seed(settings.seed)
    model = build_model(cfg.model, facts).to(settings.device)
    loss_fn = build(cfg.loss, key="loss")
    check_model_output(model, _as_inputs(splits.train[0][:2]), data.num_classes, loss_fn)
    optimizer = build(cfg.optimizer, key="optimizer")(model.parameters())
    run = _start_run(cfg, client, settings, labels, trial, output_dir) if client else None
    if trial:
        trial.remember(output_dir, run.run_id if run else None)

    trained = []

    def on_epoch(metrics):
        trained.append(metrics)
        if run:
            run.metrics({k: v for k, v in vars(metrics).items() if k != "epoch"}, step=metrics.epoch)
        if trial:
            # The best value so far: the trial's own objective, so a one-epoch dip does not prune it.
            trial.report(metrics.epoch, objective.of(objective.best(trained)))

    try:
        with trial or nullcontext():
            history = fit(
                model, optimizer, splits, epochs=settings.epochs, batch_size=settings.batch_size, seed=settings.seed,
                progress=settings.progress, on_epoch=on_epoch, cuda_graph=settings.cuda_graph, loss_fn=loss_fn,
                objective=objective,
            )
        model.load_state_dict(history.best_state)
        test_loss, test_accuracy = evaluate(model, *splits.test, loss_fn=loss_fn)
        checkpoint.save(output_dir / WEIGHTS_FILE, history.best_state, facts, data.class_names)
        if trial:
            trial.record(test_accuracy=test_accuracy)
        best = history.best
        value = objective.of(best)
        log.info("best %s %.4f (epoch %d), test acc %.4f, %.1f s on %s", objective.metric, value, best.epoch,
                 test_accuracy, time.perf_counter() - started, settings.device)
        if run:
            run.metrics({
                f"best_{objective.metric}": value, "best_epoch": best.epoch, "test_accuracy": test_accuracy,
                "test_loss": test_loss, "train_time_s": sum(m.epoch_time_s for m in history.epochs),
                "epochs_trained": len(history.epochs),
            })
            run.artifact(output_dir / WEIGHTS_FILE)
            run.artifact(output_dir / ".hydra", "hydra")
            run.tags({"sweeplab.state": "COMPLETE"})
            run.end("FINISHED")
        return value
    except (trial.Pruned if trial else ()) as pruned:
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


def _as_inputs(batch: torch.Tensor) -> torch.Tensor:
    return batch.float().div(255) if batch.dtype == torch.uint8 else batch


def _tracking():
    """sweeplab.tracking, which loads MLflow (~2.5 s of imports): only jobs that track pay for it."""
    from sweeplab import tracking

    return tracking


def _start_run(cfg, client, settings, labels: RunLabels, trial, output_dir) -> "tracking.RunLog":
    tracking = _tracking()
    experiment_id = tracking.get_or_create_experiment(client, cfg.mlflow.experiment, cfg.mlflow.artifact_location)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("trial", None)
    tags = {**labels.tags(), "seed": settings.seed, "mlflow.source.git.commit": tracking.git_commit(),
            "sweeplab.output_dir": str(output_dir), "device": str(settings.device)}
    if trial:
        tags.update({"optuna.study": trial.study_name, "optuna.trial": trial.number, "optuna.sampler": trial.sampler_name})
    name = str(cfg.mlflow.run_name) if cfg.mlflow.run_name else labels.name(
        settings.batch_size, cfg.optimizer.get("lr"), trial.number if trial else None)
    run = tracking.RunLog.start(client, experiment_id, name, tracking.flatten(resolved), tags,
                                parent_run_id=trial.parent_run_id if trial else None)
    client.log_text(run.run_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    return run
