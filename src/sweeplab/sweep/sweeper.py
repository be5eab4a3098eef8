"""The sweep loop behind `python train.py -m hydra/sweeper=optuna`.

It keeps the official plugin's search-space parsing and trial configuration, and changes what the official loop
lacks: n_trials is the study's total (resume), job directories are named by trial number, each job gets a link to
its trial (pruning in any process), failures are recorded and counted, and the study has one MLflow parent run.
"""
import functools
import logging
import math
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import optuna
from hydra.core.utils import JobStatus
from hydra.utils import get_method
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides
from omegaconf import DictConfig, OmegaConf, open_dict
from optuna.trial import TrialState

from sweeplab import tracking
from sweeplab.building import build
from sweeplab.errors import ConfigError, SweeplabError, first_line
from sweeplab.paths import resolve
from sweeplab.settings import JobSettings, cpu_count
from sweeplab.sweep import parent_run, report
from sweeplab.sweep.storage import is_journal, open_storage
from sweeplab.sweep.study import FAIL_REASON_ATTR, best_trial, claim, counts, open_study, reap_dead_trials, started
from sweeplab.sweep.trial_link import PRUNER_ATTR, Heartbeat

log = logging.getLogger(__name__)


class StudySweeper(OptunaSweeperImpl):
    def __init__(self, sampler, pruner_spec, max_failure_rate=0.0, custom_search_space=None, **official_keys):
        # The official constructor asserts on max_failure_rate and imports custom_search_space, both with a
        # traceback: they are checked in _plan instead, in one line, before the first trial.
        super().__init__(sampler=None, max_failure_rate=0.0, custom_search_space=None, **official_keys)
        self.max_failure_rate = max_failure_rate
        self.custom_search_space = custom_search_space
        self.sampler_config = sampler
        self.pruner_spec = pruner_spec

    def sweep(self, arguments: list[str]) -> None:
        try:
            plan = self._plan(arguments)
            study, created = open_study(plan["name"], plan["storage"], self.sampler, self._get_directions())
        except SweeplabError as error:
            _remove_if_empty(resolve(self.config.hydra.sweep.dir))  # Hydra made it for this sweep; nothing ran
            sys.stderr.write(f"error: {error}\n")
            sys.exit(2)
        study.set_user_attr(PRUNER_ATTR, self.pruner_spec)
        study.set_user_attr("sweeplab.sampler", type(self.sampler).__name__)
        client = plan["client"]
        parent_id = self._attach_parent(client, study, created, plan) if client else None

        def on_failed(_study, trial) -> None:  # every failed trial ends with a FAILED child run, whenever it failed
            if client:
                reason = trial.user_attrs.get(FAIL_REASON_ATTR) or "its worker died"
                parent_run.fail_child_run(client, trial, reason, parent_id)

        if hasattr(plan["storage"], "heartbeat_stale_trial_callback"):  # Optuna 5 calls this one for stale trials
            plan["storage"].heartbeat_stale_trial_callback = on_failed
        began = time.monotonic()
        log.info("Study %s in %s: %d of %d trials started", study.study_name, plan["storage_hint"],
                 started(study), self.n_trials)
        failures = self._run_trials(study, plan, on_failed)
        if self._too_many_failures(failures):
            self._finish(study, plan, parent_id, began, "FAILED")
            sys.stderr.write(
                f"error: {failures} trials failed, more than max_failure_rate={self.max_failure_rate} of "
                f"n_trials={self.n_trials}; stopped. Reasons are in each trial's log under {plan['sweep_dir']}\n"
            )
            sys.exit(1)
        self._finish(study, plan, parent_id, began, "FINISHED" if best_trial(study) else "FAILED")
        if best_trial(study) is None:
            reasons = {t.user_attrs.get(FAIL_REASON_ATTR) for t in study.trials if t.state == TrialState.FAIL}
            sys.stderr.write(
                f"error: no trial of study {study.study_name} completed "
                f"(failure reasons: {'; '.join(sorted(str(r) for r in reasons))})\n"
            )
            sys.exit(1)

    def _run_trials(self, study: optuna.Study, plan: dict, on_failed) -> int:
        """Run trials until the study holds n_trials or too many have failed; return the failures.

        Up to `_slots()` trials run at once, and each slot asks for its next trial as soon as its last one ends, so
        a slow trial never holds a finished slot idle (the official sweeper waits for a whole batch of n_jobs).
        """
        lock = threading.Lock()  # asking, telling and counting happen one slot at a time
        failures, stop = 0, False

        def next_trial():
            with lock:
                while not stop:
                    reap_dead_trials(study, on_failed)
                    if started(study) >= self.n_trials:
                        return None
                    trials = self._within_total(study, [_ask(study)])
                    if trials:
                        claim(trials[0])
                        overrides = self._configure_trials(trials, *plan["space"])[0]
                        return trials[0], list(overrides) + self._link_overrides(trials[0], plan)
                return None

        def run_slot() -> None:
            nonlocal failures, stop
            while (job := next_trial()) is not None:
                trial, overrides = job
                # This process keeps its trial alive too: one that dies before (or while) its job runs goes stale.
                with Heartbeat(plan["storage"], [trial._trial_id]):
                    (ret,) = self.launcher.launch([overrides], initial_job_idx=trial.number)
                with lock:
                    if self._tell(study, trial, ret) == TrialState.FAIL:
                        failures += 1
                        on_failed(study, study.get_trials(deepcopy=False)[trial.number])
                    stop = stop or self._too_many_failures(failures)

        slots = self._slots()
        if slots == 1:
            run_slot()
        else:
            with ThreadPoolExecutor(slots, thread_name_prefix="trial-slot") as pool:
                for done in [pool.submit(run_slot) for _ in range(slots)]:
                    done.result()
        return failures

    def _too_many_failures(self, failures: int) -> bool:
        return failures > self.max_failure_rate * self.n_trials

    def _slots(self) -> int:
        """Trials launched at the same time: n_jobs, except with the basic launcher, which runs jobs in this process
        (Hydra's job setup is process-global, so those run one after another)."""
        launcher = self.config.hydra.launcher
        if str(launcher.get("_target_", "")).endswith("BasicLauncher"):
            return 1
        limit = launcher.get("n_jobs")
        return min(self.n_jobs, limit) if isinstance(limit, int) and limit > 0 else self.n_jobs

    def _within_total(self, study: optuna.Study, trials: list[optuna.Trial]) -> list[optuna.Trial]:
        """Workers that counted the study at the same moment may ask for more trials than the total between them.
        Trial numbers are given out atomically, so a trial numbered n_trials or more is one too many: it goes back to
        the queue as WAITING, where it counts as not started (a resume with a larger total will run it)."""
        kept = []
        for trial in trials:
            if trial.number < self.n_trials:
                kept.append(trial)
                continue
            study._storage.set_trial_state_values(trial._trial_id, TrialState.WAITING)
            log.info("Trial %d is past n_trials=%d (other workers took the last ones): left WAITING",
                     trial.number, self.n_trials)
        return kept

    # -- before the first trial: everything that can be wrong is found here ------------------------------------

    def _plan(self, arguments: list[str]) -> dict:
        if not isinstance(self.n_trials, int) or self.n_trials < 1:
            raise ConfigError(f"hydra.sweeper.n_trials must be an integer >= 1 (got {self.n_trials!r})")
        if not isinstance(self.n_jobs, int) or self.n_jobs < 1:
            raise ConfigError(f"hydra.sweeper.n_jobs must be an integer >= 1 (got {self.n_jobs!r})")
        if not 0 <= self.max_failure_rate <= 1:
            raise ConfigError(f"hydra.sweeper.max_failure_rate must be in 0..1 (got {self.max_failure_rate!r})")
        if self.custom_search_space:
            try:
                self.custom_search_space_extender = get_method(self.custom_search_space)
            except Exception as error:
                raise ConfigError(
                    f"hydra.sweeper.custom_search_space={self.custom_search_space!r} cannot be imported: "
                    f"{first_line(error.__cause__ or error)}"
                ) from None
        space = self._search_space(arguments)
        self._check_job_config(space[0])
        self._fetch_data(space[0])
        self.sampler = self._build_sampler(space[0])
        self._check_pruner()
        sweep_dir = resolve(self.config.hydra.sweep.dir)
        storage_url = str(self.storage) if self.storage else str(sweep_dir / "optuna.journal")
        storage = open_storage(storage_url)
        client = None
        if self.config.mlflow.enabled:
            client = tracking.connect(self.config.mlflow.tracking_uri)
            tracking.check_can_write(client, self.config.mlflow.experiment)
        name = self.study_name or f"sweep-{time.strftime('%Y%m%d-%H%M%S')}"
        return {
            "space": space, "storage": storage, "storage_url": storage_url, "client": client, "name": name,
            "sweep_dir": sweep_dir, "storage_hint": storage_url if is_journal(storage_url) else "<storage URL>",
        }

    def _search_space(self, arguments: list[str]):
        self._process_searchspace_config()
        try:
            distributions, fixed, fixed_overrides = create_params_from_overrides(
                self._parse_sweeper_params_config() + list(arguments)
            )
        except Exception as error:  # the override parser raises several kinds, all with a readable message
            raise ConfigError(f"invalid search space in hydra.sweeper.params: {first_line(error)}") from None
        for name in fixed:
            distributions.pop(name, None)
        if not distributions and not self.custom_search_space_extender:
            raise ConfigError(
                "the search space is empty: set hydra.sweeper.params, or add one, e.g. 'batch_size=choice(32,64)'"
            )
        for name in [*distributions, *fixed]:
            if name.startswith(("+", "hydra.")) or name in ("hydra/sweeper", "hydra/launcher"):
                continue
            if "/" not in name and OmegaConf.select(self.config, name, default=_Missing) is _Missing:
                raise ConfigError(f"unknown parameter {name!r} in the search space: no such key in the config")
        return distributions, fixed, fixed_overrides

    def _check_job_config(self, distributions) -> None:
        """Validate the job config at every end of every searched range, before any trial runs."""
        JobSettings.from_config(self.config)
        for name, distribution in distributions.items():
            if isinstance(OmegaConf.select(self.config, name), DictConfig):
                continue  # a config group choice: Hydra itself rejects unknown options
            values = getattr(distribution, "choices", None) or (distribution.low, distribution.high)
            for value in values:
                candidate = self.config.copy()
                with open_dict(candidate):
                    OmegaConf.update(candidate, name, value, force_add=True)
                try:
                    JobSettings.from_config(candidate)
                except ConfigError as error:
                    raise ConfigError(f"search space for {name} includes {value!r}: {error}") from None

    def _fetch_data(self, distributions) -> None:
        """Every trial reads the same dataset: find or download it once, here, so that a missing dataset is one line
        before the first trial rather than a failed trial each. A search over the data itself is left to the trials."""
        data_keys = ("dataset", "data_dir", "extra_data_dirs", "download")
        if any(name in data_keys or name.startswith("dataset.") for name in distributions):
            return
        from sweeplab.job import fetch_dataset

        fetch_dataset(self.config, JobSettings.from_config(self.config))

    def _build_sampler(self, distributions):
        sampler_config = OmegaConf.to_container(self.sampler_config, resolve=True)
        if "seed" in sampler_config and sampler_config["seed"] is None:
            sampler_config["seed"] = self.config.seed  # seeded by default: the same sweep proposes the same trials
        try:
            sampler = build(sampler_config)
            if isinstance(sampler, functools.partial):  # GridSampler: built from the search space
                grid = {name: self._to_grid_sampler_choices(d) for name, d in distributions.items()}
                sampler = sampler(grid)
                self.n_trials = min(self.n_trials, math.prod(len(v) for v in grid.values()))
        except Exception as error:
            raise ConfigError(f"hydra.sweeper.sampler is invalid: {first_line(error)}") from None
        return sampler

    def _check_pruner(self) -> None:
        try:
            build(self.pruner_spec)
        except Exception as error:
            raise ConfigError(f"hydra.sweeper.pruner is invalid: {first_line(error)}") from None

    # -- per trial -------------------------------------------------------------------------------------------------

    def _link_overrides(self, trial: optuna.Trial, plan: dict) -> list[str]:
        overrides = [
            f"trial.storage={_quote(plan['storage_url'])}",
            f"trial.study_name={_quote(plan['name'])}",
            f"trial.trial_id={trial._trial_id}",
            # The study's folder as this process resolved it: the default is named after keys a trial may search.
            f"hydra.sweep.dir={_quote(plan['sweep_dir'])}",
            f"hydra.sweep.subdir={trial.number}",  # job directory = trial number: never overwritten on resume
        ]
        parallel = self._parallel_trials()
        if parallel > 1 and self.config.threads == 0:
            overrides.append(f"threads={max(1, cpu_count() // parallel)}")  # share the cores, don't oversubscribe
        return overrides

    def _parallel_trials(self) -> int:
        """How many trials share this machine's cores at once."""
        if str(self.config.hydra.launcher.get("_target_", "")).endswith("SlurmLauncher"):
            return 1  # each trial on its own SLURM allocation (cpus_per_task)
        return self._slots()

    def _tell(self, study: optuna.Study, trial: optuna.Trial, ret) -> TrialState:
        outcome = ret._return_value
        values, reason = None, None
        if ret.status == JobStatus.COMPLETED:
            try:
                values = [float(outcome)]
            except (TypeError, ValueError):
                reason = f"the job returned {outcome!r}, not a number"
            else:
                if not math.isfinite(values[0]):
                    values, reason = None, f"the job returned {values[0]}"
        elif isinstance(outcome, optuna.TrialPruned):
            state = TrialState.PRUNED
        else:
            reason = f"{type(outcome).__name__}: {first_line(outcome)}"
        if values is not None:
            state = TrialState.COMPLETE
        elif not isinstance(outcome, optuna.TrialPruned):
            state = TrialState.FAIL
            trial.set_user_attr(FAIL_REASON_ATTR, reason)
            log.warning("Trial %d failed: %s", trial.number, reason)
        try:
            study.tell(trial, state=state, values=values)
        except RuntimeError as error:
            # GridSampler calls study.stop() once the grid is done, which raises outside study.optimize; Optuna has
            # stored the state regardless. Otherwise the trial was finished elsewhere, e.g. failed as stale.
            if study.get_trials(deepcopy=False)[trial.number].state != state:
                log.warning("Trial %d: %s", trial.number, error)
        return state

    # -- MLflow parent run and the end of a sweep ------------------------------------------------------------------

    def _attach_parent(self, client, study, created: bool, plan: dict) -> str:
        experiment_id = tracking.get_or_create_experiment(
            client, self.config.mlflow.experiment, self.config.mlflow.artifact_location
        )
        distributions = plan["space"][0]
        params = {f"search.{k}": repr(v) for k, v in distributions.items()}
        params.update({
            "sampler": type(self.sampler).__name__, "sampler.seed": self.config.seed,
            "pruner": (self.pruner_spec or {}).get("_target_"), "direction": ",".join(self._get_directions()),
            "n_trials": self.n_trials, **{f"fixed.{k}": v for k, v in plan["space"][1].items()},
        })
        tags = {"optuna.study": study.study_name, "sweeplab.kind": "study", "dataset": self.config.dataset.name,
                "mlflow.source.git.commit": tracking.git_commit()}
        return parent_run.attach(client, experiment_id, study, created, params, {k: str(v) for k, v in tags.items() if v})

    def _finish(self, study: optuna.Study, plan: dict, parent_id: str | None, began: float, status: str) -> None:
        sweep_dir = plan["sweep_dir"]
        sweep_dir.mkdir(parents=True, exist_ok=True)
        results = report.write_results(study, sweep_dir)
        if parent_id:
            plots = report.write_plots(study, sweep_dir / "plots")
            parent_run.finish(plan["client"], parent_id, study, results, plots, status)
        hint = None
        if plan["client"]:
            uri = self.config.mlflow.tracking_uri
            hint = "mlflow ui   (in the project root)" if uri.startswith("sqlite") else f"open {uri}"
            hint += f"  → experiment '{self.config.mlflow.experiment}', run 'study-{study.study_name}'"
        print(report.summary(study, time.monotonic() - began, results, hint, plan["storage_hint"]), flush=True)


def _ask(study: optuna.Study) -> optuna.Trial:
    with warnings.catch_warnings():  # our trials do keep heartbeats, outside Study.optimize (see Heartbeat)
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
        return study.ask()


class _Missing:
    pass


def _quote(value: str) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # a study lives there already (or the folder is gone)
