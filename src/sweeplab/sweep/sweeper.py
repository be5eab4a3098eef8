"""The sweep behind `python train.py -m hydra/sweeper=optuna`: plan, study, parent run, trial loop, results.

It keeps the official plugin's keys, search-space parsing and trial configuration, and adds what the official loop
lacks: n_trials is the study's total (resume), the baseline is trial 0, the best configurations are confirmed on
fresh seeds, job directories are named by trial number, each job gets a link to its trial (pruning in any process),
failures are recorded and counted, and the study has one MLflow parent run. Errors travel as exceptions; the Hydra
plugin (the command-line edge) turns them into one line and an exit code.
"""
import logging
import time
import warnings

import optuna
from optuna.trial import TrialState

from sweeplab import compat, slurm, tracking
from sweeplab.errors import ConfigError, SweeplabError
from sweeplab.names import (
    CONFIRM_PLAN_ATTR, FAIL_REASON_ATTR, INTERRUPTED, KIND_TAG, OBJECTIVE_ATTR, OBJECTIVES_ATTR, PRUNER_ATTR,
    QUESTION_ATTR, SAMPLER_ATTR,
)
from sweeplab.paths import project_root
from sweeplab.report import publish
from sweeplab.settings import cpu_count
from sweeplab.sweep import confirmation, console, front_report, pareto, parent_run, question, report, warm_start
from sweeplab.sweep import in_process
from sweeplab.sweep.compose import compose_once
from sweeplab.sweep.job_overrides import (
    confirmation_seeds, job_folder, link_override, population_overrides, quote,
)
from sweeplab.sweep.plan import SweepPlan, make_plan
from sweeplab.sweep.study import best_search_trial, open_confirm_study, open_study, search_trials
from sweeplab.sweep.trial_loop import TrialLoop

log = logging.getLogger(__name__)


class SweepFailed(SweeplabError):
    """The sweep ran, and ended without an answer (too many failures, or no trial completed)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the sweep; its message says what is complete (the command line prints it)."""


class StudySweeper(compat.OptunaSweeperImpl):
    def __init__(self, sampler, pruner_spec, max_failure_rate=0.0, custom_search_space=None, confirm=None,
                 population=1, population_reserve=None, warm_start=None, **official_keys):
        # The official constructor asserts on max_failure_rate and imports custom_search_space, both with a
        # traceback: they are checked in the plan instead, in one line, before the first trial.
        super().__init__(sampler=None, max_failure_rate=0.0, custom_search_space=None, **official_keys)
        self.max_failure_rate = max_failure_rate
        self.custom_search_space = custom_search_space
        self.sampler_config = sampler
        self.pruner_spec = pruner_spec
        self.confirm = confirm
        self.population = population
        self.population_reserve = population_reserve
        self.warm_start = warm_start

    def setup(self, **kwargs) -> None:
        super().setup(**kwargs)
        compose_once(self.launcher)  # in-process jobs: each job's config composed once per choice of groups

    def run(self, arguments: list[str]) -> None:
        """The whole sweep; raises SweeplabError (bad input, before any trial), SweepFailed (after trials ran) or
        Interrupted (Ctrl-C or SIGTERM: the running trials are failed as interrupted, a rerun continues)."""
        launch = self._launch
        if slurm.is_slurm(self.config.hydra.launcher):  # fitted to the cluster before any work; ended jobs FAIL
            launch = slurm.prepare(self.launcher, launch)
        plan = make_plan(self, arguments)
        warm = warm_start.source(plan) if plan.warm_start else None  # a missing source study: one line, before work
        console.quiet_launchers(plan.distributions)
        sampler = confirmation.PinningSampler(plan.sampler)
        study, created = open_study(plan.name, plan.storage, sampler, list(plan.objectives.directions))
        self._check_question(study, plan, created)
        self._describe(study, plan, created, warm)
        confirm_sampler = confirmation.PinningSampler(optuna.samplers.RandomSampler(self.config.seed))
        confirm_study = open_confirm_study(study, plan.storage, confirm_sampler) if plan.confirm.enabled else None
        parent_id = self._attach_parent(study, created, plan) if plan.client else None

        def on_failed(failed_study, trial) -> None:  # every failed trial ends with a FAILED child run
            if plan.client:
                reason = trial.user_attrs.get(FAIL_REASON_ATTR) or "its worker died"
                parent_run.fail_child_run(plan.client, trial, reason, parent_id,
                                          "KILLED" if reason == INTERRUPTED else "FAILED", failed_study.study_name)

        def recover(of_study, trial):  # the result a dead worker's job recorded before the study heard of it
            return parent_run.recorded_result(plan.client, trial, plan.objectives.metrics, parent_id,
                                              of_study.study_name) if plan.client else None

        if hasattr(plan.storage, "heartbeat_stale_trial_callback"):  # Optuna 5 calls this one for stale trials
            plan.storage.heartbeat_stale_trial_callback = on_failed
        began = time.monotonic()
        chosen = f"up to {plan.confirm.top_k} points spanning the Pareto front" if plan.objectives.several else \
            f"the top {plan.confirm.top_k}"
        log.info("Study %s in %s: %d search trials, then %s", study.study_name, plan.storage_hint, plan.n_trials,
                 f"{chosen} and the baseline on {plan.confirm.seeds} fresh seeds each (in "
                 f"study {confirm_study.study_name})" if confirm_study else "no confirmation")
        if plan.population > 1:
            log.info("Populations of up to %d trials, each trained as one stacked model%s%s", plan.population,
                     f", with {plan.reserve} reserve trials per job to fill the places of members that leave"
                     if plan.reserve else "",
                     f" (members differ in {', '.join(plan.member_keys)})" if plan.member_keys else
                     ": none of the searched values can differ within a stack, so each trial runs alone")
        loop = TrialLoop(
            study, plan, sampler=sampler, configure=lambda trial, of: self._overrides(trial, plan, of.study_name),
            launch=launch, slots=self._slots(), max_failures=self.max_failure_rate * plan.n_trials,
            on_failed=on_failed, confirm_seeds=confirmation_seeds(self.config.seed, plan.confirm.seeds),
            split_seed=int(self.config.get("split_seed", self.config.seed)),
            configure_population=lambda members, of: population_overrides(members, plan, of.study_name),
            confirm_study=confirm_study, confirm_sampler=confirm_sampler, recover=recover,
        )
        try:
            failures = loop.run()
        except KeyboardInterrupt:
            failed = loop.fail_interrupted()
            raise Interrupted(self._stop_interrupted(study, plan, parent_id, failed)) from None
        too_many = failures > self.max_failure_rate * plan.n_trials
        answered = bool(pareto.search_front(study)) if plan.objectives.several else \
            best_search_trial(study) is not None
        self._finish(study, plan, parent_id, began, "FINISHED" if answered and not too_many else "FAILED")
        if too_many:
            raise SweepFailed(
                f"{failures} trials failed, more than max_failure_rate={self.max_failure_rate} of "
                f"n_trials={plan.n_trials}; stopped. Reasons are in each trial's log under {plan.sweep_dir}"
            )
        if not answered:
            if search_trials(study, (TrialState.COMPLETE,)):
                raise SweepFailed(f"no trial of study {study.study_name} met objective.constraints "
                                  f"({', '.join(c.name for c in plan.objectives.constraints)}); loosen them")
            reasons = {t.user_attrs.get(FAIL_REASON_ATTR) for t in search_trials(study, (TrialState.FAIL,))}
            raise SweepFailed(f"no trial of study {study.study_name} completed "
                              f"(failure reasons: {'; '.join(sorted(str(r) for r in reasons))})")

    def _check_question(self, study: optuna.Study, plan: SweepPlan, created: bool) -> None:
        """A study answers one question: a run that asks another one under its name stops here, before any work."""
        stored = study.user_attrs.get(QUESTION_ATTR)
        if created or stored is None:  # a study made before studies remembered their question adopts this one
            study.set_user_attr(QUESTION_ATTR, plan.question)
            return
        changed = question.differences(stored, plan.question)
        if changed:
            more = f" and {len(changed) - 2} more" if len(changed) > 2 else ""
            raise ConfigError(
                f"study {study.study_name} answers another question ({'; '.join(changed[:2])}{more}): rerun with its "
                f"settings to continue it, or name a new study, e.g. hydra.sweeper.study_name={study.study_name}-2 "
                f"(add hydra.sweeper.warm_start={study.study_name} to start from its best configurations)"
            )

    def _describe(self, study: optuna.Study, plan: SweepPlan, created: bool, warm) -> None:
        """A new study's record of what it is; later runs add trials, each recording the settings it ran with."""
        if created:
            study.set_user_attr(PRUNER_ATTR, self.pruner_spec)  # what its first trials used (each trial has its own)
            study.set_user_attr(SAMPLER_ATTR, type(plan.sampler).__name__)
            study.set_user_attr(OBJECTIVE_ATTR, plan.objective)
            study.set_user_attr(OBJECTIVES_ATTR, [{"metric": m, "direction": d} for m, d in
                                                  zip(plan.objectives.metrics, plan.objectives.directions)])
            with warnings.catch_warnings():  # "experimental" in Optuna 5
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(list(plan.objectives.metrics))  # optuna-dashboard and plots show them by name
            if plan.baseline is None:
                log.warning("The configuration without a sweep lies outside the search space: no baseline trial")
            elif isinstance(plan.sampler, optuna.samplers.GridSampler):
                # Optuna's GridSampler fails on a queued trial once one grid point is left; the grid holds it anyway.
                log.info("Grid sampler: the baseline is one of the grid's points, not a queued trial 0")
            else:
                confirmation.enqueue_baseline(study, plan.baseline)
            if warm:
                warm_start.enqueue(study, plan, warm)
        elif plan.confirm.enabled and plan.baseline is not None and confirmation.baseline_owed(study):
            log.info("The baseline did not finish (interrupted, or its worker died): it runs again")
            confirmation.enqueue_baseline(study, plan.baseline)

    # -- per trial -------------------------------------------------------------------------------------------------

    def _launch(self, overrides: list[str], number: int):
        if in_process.is_basic(self.launcher):
            return in_process.launch(self.launcher, overrides, number)
        (ret,) = self.launcher.launch([overrides], initial_job_idx=number)
        return ret

    def _overrides(self, trial: optuna.Trial, plan: SweepPlan, study_name: str) -> list[str]:
        overrides = list(self._configure_trials([trial], plan.distributions, plan.fixed, plan.fixed_overrides)[0])
        overrides += [
            link_override(plan, study_name, trial_id=compat.trial_id(trial)),
            # The study's folder as this process resolved it: the default is named after keys a trial may search.
            f"hydra.sweep.dir={quote(plan.sweep_dir)}",
            # job directory = trial number (confirm-<number> for the confirmation study's): never overwritten
            f"hydra.sweep.subdir={job_folder(trial.number, study_name != plan.name)}",
        ]
        parallel = self._parallel_trials()
        if parallel > 1 and self.config.threads == 0:
            overrides.append(f"threads={max(1, cpu_count() // parallel)}")  # share the cores, don't oversubscribe
        return overrides

    def _slots(self) -> int:
        """Trials launched at the same time: n_jobs, except with the basic launcher, which runs jobs in this process
        (Hydra's job setup is process-global, so those run one after another)."""
        launcher = self.config.hydra.launcher
        if str(launcher.get("_target_", "")).endswith("BasicLauncher"):
            return 1
        limit = launcher.get("n_jobs")
        return min(self.n_jobs, limit) if isinstance(limit, int) and limit > 0 else self.n_jobs

    def _parallel_trials(self) -> int:
        """How many trials share this machine's cores at once."""
        if slurm.is_slurm(self.config.hydra.launcher):
            return 1  # each trial on its own SLURM allocation (cpus_per_task)
        return self._slots()

    # -- MLflow parent run and the end of a sweep ------------------------------------------------------------------

    def _attach_parent(self, study, created: bool, plan: SweepPlan) -> str:
        client = plan.client
        experiment_id = tracking.get_or_create_experiment(
            client, self.config.mlflow.experiment, self.config.mlflow.artifact_location
        )
        params = {f"search.{k}": repr(v) for k, v in plan.distributions.items()}
        params.update({
            "sampler": type(plan.sampler).__name__, "sampler.seed": self.config.seed,
            "pruner": (self.pruner_spec or {}).get("_target_"), "direction": ",".join(self._get_directions()),
            "objective": ",".join(plan.objectives.metrics), "n_trials": plan.n_trials,
            "confirm.top_k": plan.confirm.top_k, "confirm.seeds": plan.confirm.seeds, "population": plan.population,
            # a +key=value override's key without the '+', which MLflow refuses in a name
            "population_reserve": plan.reserve, **{f"fixed.{k.lstrip('+')}": v for k, v in plan.fixed.items()},
            **({"constraints": ",".join(c.name for c in plan.objectives.constraints)} if plan.objectives.constraints
               else {}),
        })
        tags = {"optuna.study": study.study_name, KIND_TAG: "study", "dataset": self.config.dataset.name,
                "mlflow.source.git.commit": tracking.git_commit()}
        return parent_run.attach(client, experiment_id, study, created, params, {k: str(v) for k, v in tags.items() if v})

    def _stop_interrupted(self, study: optuna.Study, plan: SweepPlan, parent_id: str | None, failed: list) -> str:
        """After Ctrl-C or SIGTERM: the results so far, the parent run KILLED, and one line of what is complete."""
        plan.sweep_dir.mkdir(parents=True, exist_ok=True)
        if plan.objectives.several:
            metrics = list(plan.objectives.metrics)
            front_report.write_results(study, plan.sweep_dir, metrics,
                                       pareto.confirmed_front(study, self.config.seed, metrics))
        else:
            confirmed = confirmation.answer(study, self.config.seed)
            report.write_results(study, plan.sweep_dir, confirmed, self._get_directions()[0])
        if parent_id:
            parent_run.end_interrupted(plan.client, parent_id, study)
        search = search_trials(study, (TrialState.COMPLETE, TrialState.PRUNED))
        confirm_study = confirmation.confirm_study_of(study)
        jobs = confirm_study.user_attrs.get(CONFIRM_PLAN_ATTR, []) if confirm_study else []
        done = len(confirm_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) if confirm_study else 0
        stopped = ", ".join(f"{'confirmation ' if s.study_name != study.study_name else ''}trial {n}"
                            for s, n in failed) or "no trial was running"
        return (f"study {study.study_name}: {len(search)} of {plan.n_trials} search trials done"
                f"{f', {done} of {len(jobs)} confirmation jobs' if jobs else ''}; stopped: {stopped} "
                f"(FAIL, interrupted). Rerun the same command to continue.")

    def _finish(self, study: optuna.Study, plan: SweepPlan, parent_id: str | None, began: float, status: str) -> None:
        plan.sweep_dir.mkdir(parents=True, exist_ok=True)
        hint = None
        if plan.client:
            experiment = plan.client.get_run(parent_id).info.experiment_id if parent_id else "0"
            hint = tracking.where_to_look(self.config.mlflow.tracking_uri, experiment, project_root() / "mlflow.db")
            hint += f"   (run 'study-{study.study_name}')"
        if plan.objectives.several:
            return front_report.finish(study, plan, parent_id, status, self.config.seed, began, hint)
        confirmed = confirmation.answer(study, self.config.seed)
        direction = self._get_directions()[0]
        results = report.write_results(study, plan.sweep_dir, confirmed, direction)
        page = publish.study(study, plan.sweep_dir, confirmed, direction, plan.client, parent_id)
        if parent_id:
            parent_run.finish(plan.client, parent_id, study, results, status, confirmed)
        print(report.summary(study, time.monotonic() - began, results, hint, plan.storage_hint,
                             confirmed, direction, page), flush=True)
