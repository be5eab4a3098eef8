"""A plain grid sweep (`python train.py -m batch_size=32,64,128`, Hydra's basic sweeper) under one MLflow parent run,
with a table comparing its jobs — as an Optuna study has. A Hydra callback: it starts the parent before the first job
and ends it after the last; each job finds the parent's id in its environment (launchers' workers inherit it)."""
import atexit
import os
import time

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from sweeplab.names import KIND_TAG, OBJECTIVE_TAG, PARENT_TAG
from sweeplab.objective import Objective, summary_key

PARENT_ENV = "SWEEPLAB_GRID_PARENT_RUN_ID"


class GridParentRun(Callback):
    def __init__(self) -> None:
        self.client = self.run_id = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        if not config.mlflow.enabled or not str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper"):
            return
        from sweeplab import tracking

        self.client = tracking.connect(config.mlflow.tracking_uri)
        experiment_id = tracking.get_or_create_experiment(
            self.client, config.mlflow.experiment, config.mlflow.artifact_location)
        run = self.client.create_run(experiment_id, run_name=f"grid-{time.strftime('%Y%m%d-%H%M%S')}", tags={
            KIND_TAG: "grid", "mlflow.source.git.commit": tracking.git_commit() or "",
            OBJECTIVE_TAG: Objective.from_config(config.objective).metric})
        self.run_id = run.info.run_id
        for override in config.hydra.overrides.task:
            key, _, value = override.partition("=")
            self.client.log_param(self.run_id, f"grid.{key.lstrip('+~')}", value[:6000])
        os.environ[PARENT_ENV] = self.run_id
        atexit.register(self._end, "FAILED")  # a job that stops the whole sweep must not leave the parent RUNNING

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        if self.run_id:
            from sweeplab.paths import project_root
            from sweeplab.tracking import where_to_look

            parent = self.client.get_run(self.run_id)
            objective = Objective.from_config(config.objective)  # several: the grid is compared by the first
            line = self._summarise(parent, objective.metric, objective.direction)
            hint = where_to_look(config.mlflow.tracking_uri, parent.info.experiment_id, project_root() / "mlflow.db")
            self._end("FINISHED")
            print(f"{line}\nMLflow:   {hint}   (run '{parent.info.run_name}')", flush=True)

    def _summarise(self, parent, metric: str, direction: str) -> str:
        children = self.client.search_runs(
            [parent.info.experiment_id], f"tags.`{PARENT_TAG}` = '{self.run_id}'", max_results=10000)
        key = summary_key(metric)
        done = [c for c in children if key in c.data.metrics]
        grid_keys = sorted({k.removeprefix("grid.") for k in parent.data.params})
        table = {"run": [c.info.run_name for c in children], "status": [c.info.status for c in children],
                 **{k: [c.data.params.get(k) for c in children] for k in grid_keys},
                 key: [c.data.metrics.get(key) for c in children],
                 "test_accuracy": [c.data.metrics.get("test_accuracy") for c in children]}
        self.client.log_table(self.run_id, data=table, artifact_file="grid.json")
        self.client.log_metric(self.run_id, "jobs_finished", len(done))
        if done:
            pick = max if direction == "maximize" else min
            best = pick(done, key=lambda c: c.data.metrics[key])
            self.client.log_metric(self.run_id, key, best.data.metrics[key])
            self.client.set_tag(self.run_id, "best_child_run_id", best.info.run_id)
            return (f"Grid of {len(children)} jobs, {len(done)} finished: best {metric} {best.data.metrics[key]:.4f} "
                    f"in run {best.info.run_name}")
        return f"Grid of {len(children)} jobs, none finished"

    def _end(self, status: str) -> None:
        atexit.unregister(self._end)
        os.environ.pop(PARENT_ENV, None)
        if self.run_id and self.client.get_run(self.run_id).info.status == "RUNNING":
            self.client.set_terminated(self.run_id, status)
        self.run_id = None
