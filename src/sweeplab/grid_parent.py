"""A plain grid sweep (`python train.py -m batch_size=32,64,128`, Hydra's basic sweeper) under one MLflow parent run,
with a table comparing its jobs — as an Optuna study has. A Hydra callback: it starts the parent before the first job
and ends it after the last; each job finds the parent's id in its environment (launchers' workers inherit it)."""
import atexit
import os
import time
from pathlib import Path

from hydra.experimental.callback import Callback
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from sweeplab.labels import GRID_VARYING_ENV
from sweeplab.report.model import as_table

from sweeplab.names import KIND_TAG, OBJECTIVE_TAG, PARENT_TAG
from sweeplab.objective import Objective, declared_metrics, summary_key

PARENT_ENV = "SWEEPLAB_GRID_PARENT_RUN_ID"


class GridParentRun(Callback):
    def __init__(self) -> None:
        self.client = self.run_id = None
        self.swept, self.defaults = [], {}

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        if not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
            return
        from sweeplab.sweep.console import quiet_launchers

        quiet_launchers(swept_keys(config.hydra.overrides.task))
        if not config.mlflow.enabled:
            return
        from sweeplab import tracking

        self.client = tracking.connect(config.mlflow.tracking_uri)
        experiment_id = tracking.get_or_create_experiment(
            self.client, config.mlflow.experiment, config.mlflow.artifact_location)
        run = self.client.create_run(experiment_id, run_name=f"grid-{time.strftime('%Y%m%d-%H%M%S')}", tags={
            KIND_TAG: "grid", "mlflow.source.git.commit": tracking.git_commit() or "",
            OBJECTIVE_TAG: Objective.from_config(config.objective, declared_metrics(config)).metric})
        self.run_id = run.info.run_id
        for override in config.hydra.overrides.task:
            key, _, value = override.partition("=")
            self.client.log_param(self.run_id, f"grid.{key.lstrip('+~')}", value[:6000])
        self.swept = swept_keys(config.hydra.overrides.task)
        self.defaults = {k: OmegaConf.select(config, f"hydra.runtime.choices.{k}", default=None)
                         if isinstance(OmegaConf.select(config, k, default=None), DictConfig)
                         else OmegaConf.select(config, k, default=None) for k in self.swept}
        os.environ[PARENT_ENV] = self.run_id
        os.environ[GRID_VARYING_ENV] = ",".join(self.swept)  # each job names its run after these keys' values
        atexit.register(self._end, "FAILED")  # a job that stops the whole sweep must not leave the parent RUNNING

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if self.run_id:
            from sweeplab.paths import project_root
            from sweeplab.tracking import where_to_look

            parent = self.client.get_run(self.run_id)
            objective = Objective.from_config(config.objective, declared_metrics(config))  # several: the grid is compared by the first
            line = self._summarise(parent, objective.metric, objective.direction, Path(config.hydra.sweep.dir))
            hint = where_to_look(config.mlflow.tracking_uri, parent.info.experiment_id, project_root() / "mlflow.db")
            self._end("FINISHED")
            print(f"{line}\nMLflow:   {hint}   (run '{parent.info.run_name}')", flush=True)

    def _summarise(self, parent, metric: str, direction: str, folder: Path) -> str:
        children = self.client.search_runs(
            [parent.info.experiment_id], f"tags.`{PARENT_TAG}` = '{self.run_id}'", max_results=10000)
        key = summary_key(metric)
        done = [c for c in children if key in c.data.metrics]
        grid_keys = sorted({k.removeprefix("grid.") for k in parent.data.params})
        # A config group's choice (dataset=digits, model=ffn512) is a tag of the run, every other value a param.
        table = {"run": [c.info.run_name for c in children], "status": [c.info.status for c in children],
                 **{k: [c.data.params.get(k, c.data.tags.get(k)) for c in children] for k in grid_keys},
                 key: [c.data.metrics.get(key) for c in children],
                 "test_accuracy": [c.data.metrics.get("test_accuracy") for c in children]}
        self.client.log_dict(self.run_id, as_table(table), "grid.json")
        self.client.log_metric(self.run_id, "jobs_finished", len(done))
        page = self._report(parent, children, metric, direction, folder)
        if done:
            pick = max if direction == "maximize" else min
            best = pick(done, key=lambda c: c.data.metrics[key])
            self.client.log_metric(self.run_id, key, best.data.metrics[key])
            self.client.set_tag(self.run_id, "best_child_run_id", best.info.run_id)
            if best.inputs and best.inputs.dataset_inputs:  # the runs table's Dataset column, for the parent too
                self.client.log_inputs(self.run_id, best.inputs.dataset_inputs[:1])
            return (f"Grid of {len(children)} jobs, {len(done)} finished: best {metric} {best.data.metrics[key]:.4f} "
                    f"in run '{best.info.run_name}'" + (f"\nReport:   {page}" if page else ""))
        return f"Grid of {len(children)} jobs, none finished"

    def _report(self, parent, children, metric: str, direction: str, folder: Path) -> Path | None:
        """report.html in the grid's folder and on the parent run, its verdict as the run's description."""
        import logging

        from sweeplab.report import publish
        from sweeplab.report.grid_view import grid_report
        from sweeplab.report.model import markdown

        try:
            report = grid_report(parent, children, self.swept, self.defaults, metric, direction, self.client)
            path = publish.write(report, folder)
            publish.to_run(self.client, self.run_id, markdown(report), path)
            return path
        except Exception as error:  # the table and metrics above hold the grid's answer regardless
            logging.getLogger(__name__).warning("could not write the grid's report: %s", error)
            return None

    def _end(self, status: str) -> None:
        atexit.unregister(self._end)
        os.environ.pop(PARENT_ENV, None)
        os.environ.pop(GRID_VARYING_ENV, None)
        if self.run_id and self.client.get_run(self.run_id).info.status == "RUNNING":
            self.client.set_terminated(self.run_id, status)
        self.run_id = None


def swept_keys(overrides) -> list[str]:
    """The keys a grid varies (``batch_size=32,64``, ``range(...)``, ``choice(...)``), in command-line order."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [o.get_key_element().lstrip("+~") for o in parsed if o.is_sweep_override()]
