"""One training job: config -> data -> model -> loop -> metrics -> tracking -> objective."""
import logging
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from sweeplab import checkpoint, timing
from sweeplab.building import build, build_model
from sweeplab.cost import CostMeter
from sweeplab.data import Splits
from sweeplab.data.loading import data_facts, load_data
from sweeplab.data.source import LoadedData
from sweeplab.errors import ConfigError
from sweeplab.labels import RunLabels
from sweeplab.names import OUTPUT_DIR_TAG, STATE_TAG
from sweeplab.metrics import MetricSet, MetricSpecs, probe
from sweeplab.objective import Objective, declared_metrics, summary_key
from sweeplab.settings import JobSettings, cpu_count
from sweeplab.training import evaluate, fit, to_unit

log = logging.getLogger(__name__)
WEIGHTS_FILE = checkpoint.WEIGHTS_FILE
PROBE_INPUTS = 64  # the user's metrics are tried on this many validation inputs before training


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


@dataclass
class Prepared:
    """What the trainings of one job (or of one population's members) share: data, loss, objective, tracking."""

    settings: JobSettings
    objective: Objective
    splits: Splits
    data: LoadedData
    facts: dict
    loss_fn: object
    client: object | None
    started: float
    metrics: MetricSpecs  # the user's own (sweeplab.metrics): each training builds its own with user_metrics()

    def user_metrics(self) -> MetricSet | None:
        return self.metrics.build(self.settings.device) if self.metrics else None


def prepare(cfg: DictConfig, in_trial: bool) -> Prepared:
    settings = JobSettings.from_config(cfg)
    objective = Objective.from_config(cfg.objective, declared_metrics(cfg))
    # A single job fails fast on an unreachable server; a sweep's trial waits as long as MLflow's own retries would.
    with timing.section("tracking"):
        client = _tracking().connect(cfg.mlflow.tracking_uri, patience_s=120.0 if in_trial else 0.0) \
            if cfg.mlflow.enabled else None
    if settings.threads:
        torch.set_num_threads(settings.threads)
    elif "SLURM_CPUS_PER_TASK" in os.environ:  # torch would take every core of the node where jobs are not bound
        torch.set_num_threads(cpu_count())
    started = time.perf_counter()
    with timing.section("setup"):
        splits, data = load_data(cfg, settings)
    return Prepared(settings, objective, splits, data, data_facts(data), build(cfg.loss, key="loss"), client, started,
                    MetricSpecs.from_config(cfg))


def new_model(cfg: DictConfig, prepared: Prepared, seed: int) -> torch.nn.Module:
    """The configured model with the initial weights of ``seed``, its output checked on two training inputs (and the
    user's metrics on a few validation inputs)."""
    torch.manual_seed(seed)
    device = prepared.settings.device
    model = build_model(cfg.model, prepared.facts).to(device)
    inputs = to_unit(prepared.splits.train[0][:2], device)
    check_model_output(model, inputs, prepared.data.num_classes, prepared.loss_fn)
    if prepared.metrics:
        images, labels = prepared.splits.val
        with torch.inference_mode():
            model.eval()
            outputs = model(to_unit(images[:PROBE_INPUTS], device))
            model.train()
        probe(prepared.user_metrics(), outputs, labels[:PROBE_INPUTS].to(device))
    return model


class TrackedTraining:
    """One training's records: its MLflow run, its Optuna trial (``trial``: see run_job) and its output folder."""

    def __init__(self, cfg: DictConfig, settings: JobSettings, prepared: Prepared, labels: RunLabels, trial,
                 output_dir: Path, parent_run_id: str | None = None):
        self.cfg, self.prepared, self.trial, self.output_dir = cfg, prepared, trial, output_dir
        self.settings = settings  # the training's own: a population member's seed and optimizer values
        self.trained = []
        self._last = None  # the last epoch's metrics until the training's results are written with them
        with timing.section("tracking"):
            self.run = _start_run(cfg, prepared.client, self.settings, labels, trial, output_dir, parent_run_id) \
                if prepared.client else None
            if self.run:
                self.run.dataset(cfg.dataset.name, prepared.data, str(cfg.dataset.source.get("_target_")),
                                 prepared.settings.data_dir)
        if trial:
            with timing.section("optuna"):
                trial.remember(output_dir, self.run.run_id if self.run else None)

    def epoch(self, metrics) -> None:
        """Log an epoch's metrics; in a sweep, report it to the trial (which raises trial.Pruned to stop). The last
        epoch's are written with the training's results (see finish; a trial is never pruned after it): one write
        less per trial, and a job that dies before its results have been written has not reported that epoch."""
        self.trained.append(metrics)
        timing.add("epochs", metrics.epoch_time_s)
        if metrics.epoch >= self.settings.epochs:
            self._last = metrics
            return
        if self.run:
            with timing.section("tracking"):
                self.run.metrics(metrics.values(), step=metrics.epoch)
        self._report(metrics)

    def _report(self, metrics) -> None:
        objective = self.prepared.objective
        if self.trial and not objective.several:  # Optuna cannot prune a study of several objectives
            # The best value so far: the trial's own objective, so a one-epoch dip does not prune it.
            with timing.section("optuna"):
                self.trial.report(metrics.epoch, objective.of(objective.best(self.trained)),
                                  last=metrics.epoch >= self.settings.epochs)

    def _last_epoch(self, report: bool = True) -> dict:
        """The last epoch's metrics, to go with the run's final write (and reported to the trial now)."""
        last, self._last = self._last, None
        if last is None:
            return {}
        if report:
            self._report(last)
        return {last.epoch: last.values()}

    def finish(self, model: torch.nn.Module, history, costs: dict | None = None) -> float | list[float]:
        """Test the best epoch's weights, save them, log the results and the training's ``costs`` (see
        sweeplab.cost; a population's members share theirs, so they have none); return the objective's value(s)."""
        prepared, objective = self.prepared, self.prepared.objective
        with timing.section("evaluation"):
            model.load_state_dict(history.best_state)
            user_metrics = prepared.user_metrics()
            test_loss, test_accuracy = evaluate(model, *prepared.splits.test, loss_fn=prepared.loss_fn,
                                                metrics=user_metrics)
            tested = user_metrics.compute("test_") if user_metrics else {}
        with timing.section("checkpoint"):
            checkpoint.save(self.output_dir / WEIGHTS_FILE, history.best_state, prepared.facts,
                            prepared.data.class_names)
        best = history.best
        measured = {**{k: v for k, v in best.values().items() if k != "epoch_time_s"}, **(costs or {})}
        value, violations = objective.values(measured), objective.violations(measured)
        epochs = self._last_epoch()
        if self.trial:
            with timing.section("optuna"):
                self.trial.record(test_accuracy=test_accuracy, **tested, **(costs or {}))
                self.trial.constrain(violations)
        unmet = [name for name, v in violations.items() if v > 0]
        shown = " ".join(f"{m} {measured[m]:.4g}" for m in objective.metrics)
        log.info("best %s (epoch %d), test acc %.4f%s, %.1f s on %s%s", shown, best.epoch, test_accuracy,
                 "".join(f", {k.replace('_', ' ', 1)} {v:.4f}" for k, v in tested.items()),
                 time.perf_counter() - prepared.started, prepared.settings.device,
                 f"; constraints not met: {', '.join(unmet)}" if unmet else "")
        if self.run:
            with timing.section("tracking"):
                self._log_results(history, measured, costs, violations, {"test_loss": test_loss,
                                                                         "test_accuracy": test_accuracy, **tested},
                                  epochs)
        return value

    def _log_results(self, history, measured: dict, costs: dict | None, violations: dict, tested: dict,
                     epochs: dict) -> None:
        objective = self.prepared.objective
        summary = {summary_key(m): measured[m] for m in objective.metrics if m not in (costs or {})}
        summary.update({summary_key(k): v for k, v in (costs or {}).items()})
        if costs is None:  # a population's member: the time of its stack's epochs, shared with the others
            summary["train_time_s"] = sum(m.epoch_time_s for m in history.epochs)
        self.run.artifact(self.output_dir / WEIGHTS_FILE)
        self.run.artifact(self.output_dir / ".hydra", "hydra")
        self.run.end("FINISHED", metrics={
            **summary, "best_epoch": history.best.epoch, **tested,
            "epochs_trained": len(history.epochs),
            **({"feasible": float(not any(v > 0 for v in violations.values()))} if violations else {}),
        }, tags={STATE_TAG: "COMPLETE"}, epochs=epochs)

    def pruned(self, reason: BaseException) -> None:
        if self.run:
            self.run.end("KILLED", str(reason), metrics={"epochs_trained": len(self.trained)},
                         tags={STATE_TAG: "PRUNED"})

    def failed(self, error: BaseException) -> None:
        interrupted = isinstance(error, KeyboardInterrupt)  # Ctrl-C or SIGTERM: the sweep fails it as interrupted
        epochs = {} if interrupted else self._last_epoch(report=False)
        if self.run and interrupted:
            self.run.end("KILLED", "interrupted", tags={STATE_TAG: "FAIL"})
        elif self.run:
            self.run.end("FAILED", f"{type(error).__name__}: {error}", tags={STATE_TAG: "FAIL"}, epochs=epochs)


def run_job(cfg: DictConfig, output_dir: Path, labels: RunLabels | None = None, trial=None,
            parent_run_id: str | None = None) -> float | list[float]:
    """Train one configuration; return the objective: its best epoch's value of ``objective.metric``, or with several
    objectives the list of their values (per-epoch metrics at the epoch best by the first, costs of the training).

    ``trial``, in a sweep, is the link to this job's Optuna trial: ``report(epoch, value)`` (raises ``trial.Pruned``
    to stop), ``remember(output_dir, run_id)``, ``record(**values)``, ``constrain(violations)``, ``number``, ``study_name``, ``sampler_name``,
    ``parent_run_id``. ``parent_run_id`` nests the run under a grid sweep's parent run."""
    prepared = prepare(cfg, trial is not None)
    settings = prepared.settings
    with timing.section("setup"):
        model = new_model(cfg, prepared, settings.seed)
        optimizer = build(cfg.optimizer, key="optimizer")(model.parameters())
    tracked = TrackedTraining(cfg, settings, prepared, labels or RunLabels.from_config(cfg), trial, output_dir,
                              parent_run_id)
    try:
        with trial or nullcontext(), CostMeter(settings.device) as meter:
            history = fit(
                model, optimizer, prepared.splits, epochs=settings.epochs, batch_size=settings.batch_size,
                seed=settings.seed, progress=settings.progress, on_epoch=tracked.epoch, cuda_graph=settings.cuda_graph,
                loss_fn=prepared.loss_fn, objective=prepared.objective, augment=prepared.data.augment,
                metrics=prepared.user_metrics(),
            )
        costs = meter.costs([m.epoch_time_s for m in history.epochs], len(prepared.splits.train[1]),
                            settings.batch_size)
        return tracked.finish(model, history, costs)
    except (trial.Pruned if trial else ()) as pruned:
        tracked.pruned(pruned)
        raise
    except BaseException as error:
        tracked.failed(error)
        raise


def _tracking():
    """sweeplab.tracking, which loads MLflow (~2.5 s of imports): only jobs that track pay for it."""
    from sweeplab import tracking

    return tracking


def _start_run(cfg, client, settings, labels: RunLabels, trial, output_dir, parent_run_id):
    tracking = _tracking()
    experiment_id = tracking.get_or_create_experiment(client, cfg.mlflow.experiment, cfg.mlflow.artifact_location)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    tags = {**labels.tags(), "seed": settings.seed, "mlflow.source.git.commit": tracking.git_commit(),
            OUTPUT_DIR_TAG: str(output_dir), "device": str(settings.device)}
    if trial:
        tags.update({"optuna.study": trial.study_name, "optuna.trial": trial.number, "optuna.sampler": trial.sampler_name})
    confirming = trial is not None and trial.role == "confirm"
    name = str(cfg.mlflow.run_name) if cfg.mlflow.run_name else labels.name(
        settings.batch_size, cfg.optimizer.get("lr"), trial, settings.seed if confirming else None)
    from sweeplab.run_log import RunLog

    run = RunLog.start(client, experiment_id, name, tracking.flatten(resolved), tags,
                                parent_run_id=trial.parent_run_id if trial else parent_run_id)
    run.text(OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    return run
