"""The trial loop: ask the study for a trial, launch its job, tell the study how it ended — in `slots` parallel
slots, each asking for its next trial as soon as its last one ends (the official sweeper waits for whole batches).

With ``population`` > 1, search trials are asked freely and wait in a pool grouped by the values a stack must share
(batch size, model: sweeplab.populations.pool); a full group runs as one population job (sweeplab.populations.job),
and each member is told on its own. Confirmation trials that share those values are planned next to each other and
grown into populations the same way."""
import logging
import math
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import optuna
from hydra.core.utils import JobStatus
from optuna.trial import TrialState

from sweeplab import compat, interrupts, timing
from sweeplab.errors import first_line
from sweeplab.names import FAIL_REASON_ATTR, INTERRUPTED, ROLE_ATTR
from sweeplab.sweep import confirmation
from sweeplab.sweep.plan import SweepPlan
from sweeplab.populations.pool import POOL_POPULATIONS, PopulationPool
from sweeplab.sweep.study import STARTED_STATES, claim, counted, owned_running, reap_dead_trials, started
from sweeplab.sweep.trial_link import Heartbeat

log = logging.getLogger(__name__)
WAIT = object()  # next_trial's answer while confirmation waits for other workers' search trials
WAIT_S = 1.0


class TrialLoop:
    def __init__(self, study: optuna.Study, plan: SweepPlan, *, sampler: confirmation.PinningSampler,
                 configure: Callable, launch: Callable, slots: int, max_failures: float, on_failed: Callable,
                 confirm_seeds: list[int], split_seed: int, configure_population: Callable | None = None,
                 confirm_study: optuna.Study | None = None, confirm_sampler: confirmation.PinningSampler | None = None,
                 recover: Callable | None = None):
        """``study`` holds the search (the baseline among it), ``confirm_study`` the confirmation trials;
        ``configure(trial, study)`` gives a trial's overrides; ``recover(study, trial)`` the recorded result of a
        trial whose worker died after its job ended (see reap_dead_trials)."""
        self.study, self.plan, self.sampler = study, plan, sampler
        self.confirm_study, self.confirm_sampler = confirm_study, confirm_sampler
        self.configure, self.launch, self.slots = configure, launch, slots
        self.max_failures, self.on_failed, self.recover = max_failures, on_failed, recover
        self.confirm_seeds, self.split_seed = confirm_seeds, split_seed
        self.configure_population = configure_population
        self.lock = threading.Lock()  # asking, telling and counting happen one slot at a time
        self.failures, self.stop = 0, False
        self.pending = []  # confirmation trials asked for a population they could not join: each leads the next
        full = plan.population + plan.reserve
        self.pool = PopulationPool(full, POOL_POPULATIONS * full) if self._pooled else None

    def run(self) -> int:
        """Run trials until the study holds its search and confirmation trials, or too many failed; return the
        failures."""
        with Heartbeat(self.plan.storage, self.pool.trial_ids if self.pool else []):  # trials waiting in the pool
            self._run_slots()
        for trial, _ in self.pool.drain() if self.pool else []:  # left waiting when too many trials failed
            tell(self.study, trial, {"failed": "the sweep stopped (too many failures) before its population ran"})
            self.on_failed(self.study, self.study.get_trials(deepcopy=False)[trial.number])
        return self.failures

    def _run_slots(self) -> None:
        if self.slots == 1:
            self._slot()
            return
        executor = ThreadPoolExecutor(self.slots, thread_name_prefix="trial-slot")
        try:
            for done in [executor.submit(self._slot) for _ in range(self.slots)]:
                done.result()
        except KeyboardInterrupt:  # only this thread hears it: the slots ask for no more trials, nobody waits
            self.stop = True
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        executor.shutdown()

    @property
    def _pooled(self) -> bool:
        """Search trials run in populations grouped by their shared values (see sweeplab.populations.pool)."""
        return self.plan.population > 1 and bool(self.plan.member_keys)

    def _slot(self) -> None:
        while True:
            interrupts.raise_if_stopped()
            with timing.section("sampler"):
                members = self._next()
            if members is None:
                break
            if members is WAIT:
                time.sleep(WAIT_S)
                continue
            study = self._study_of(members[0][0])
            try:
                # This process keeps its trials alive too: one that dies before (or while) its job runs goes stale.
                with Heartbeat(self.plan.storage, [compat.trial_id(trial) for trial, _ in members]), \
                        timing.section("launch"):
                    if len(members) == 1:
                        (trial, overrides), = members
                        ret = self.launch(overrides, trial.number)
                        outcomes = [(trial, job_outcome(ret))]
                    else:
                        ret = self.launch(self.configure_population(members, study), members[0][0].number)
                        outcomes = population_outcomes(ret, [trial for trial, _ in members])
            except KeyboardInterrupt:
                self.stop = True
                raise
            with self.lock, timing.section("optuna"):
                for trial, outcome in outcomes:
                    if tell(study, trial, outcome) == TrialState.FAIL:
                        self.failures += 1
                        self.on_failed(study, study.get_trials(deepcopy=False)[trial.number])
                self.stop = self.stop or self.failures > self.max_failures
            timing.write(str(members[0][0].number))

    def fail_interrupted(self) -> list[tuple[optuna.Study, int]]:
        """After Ctrl-C or SIGTERM: FAIL the trials this process was running (or had just asked for), with reason
        "interrupted" (a rerun runs them again); return (study, number) of each."""
        failed = []
        for study in (self.study, self.confirm_study):
            for trial in owned_running(study) if study is not None else []:
                optuna.trial.Trial(study, compat.trial_id(trial)).set_user_attr(FAIL_REASON_ATTR, INTERRUPTED)
                study.tell(trial.number, state=TrialState.FAIL)
                self.on_failed(study, study.get_trials(deepcopy=False)[trial.number])
                failed.append((study, trial.number))
        return failed

    def _study_of(self, trial) -> optuna.Study:
        return self.confirm_study if trial.user_attrs.get(ROLE_ATTR) == "confirm" else self.study

    def _next(self):
        """The trials to run next (one, or a population), WAIT, or None when the study has all it needs."""
        with self.lock:
            if self.stop:
                return None
            if self.pending:  # a confirmation trial that leads a population of its own
                return self._grow(self.pending.pop(0), self._confirmation_asker(self._confirmation_jobs()))
            reap_dead_trials(self.study, self.on_failed, self.recover)
            if self.confirm_study is not None:
                reap_dead_trials(self.confirm_study, self.on_failed, self.recover)
            if self.pool is not None:
                group = self._pooled_search()
                if group is not None:
                    return group
                if started(self.study) < self.plan.n_trials:
                    return WAIT  # another worker took the last search trial
            elif started(self.study) < self.plan.n_trials:
                first = self._search_trial()
                return WAIT if first is None else [first]  # one at a time: populations take the pool above
            if not self.plan.confirm.enabled:
                return None
            jobs = self._confirmation_jobs()
            if jobs is None:
                return WAIT
            first = self._confirmation_trial(jobs)
            if first is None or first is WAIT:
                return first
            return self._grow(first, self._confirmation_asker(jobs))

    def _confirmation_jobs(self):
        # In populations, jobs that can share a stack are planned next to each other, so that they run together.
        shared = self.plan.shared_values if self.plan.population > 1 and self.plan.member_keys else None
        return confirmation.jobs(self.study, self.confirm_study, self.plan.n_trials, self.plan.confirm.top_k,
                                 self.confirm_seeds, group_by=shared)

    def _confirmation_asker(self, jobs: list) -> Callable:
        return lambda shared: self._confirmation_trial(jobs) or None

    def _grow(self, first, ask_member: Callable) -> list:
        """The first trial and up to population - 1 more whose shared values equal its own, then up to `reserve`
        more: the job trains `population` at once, and each reserve steps in where a member leaves."""
        members = [first]
        if self.plan.population == 1 or not self.plan.member_keys:
            return members
        shared = self.plan.shared_values(first[0].params)
        while len(members) < self.plan.population + self.plan.reserve:
            member = ask_member(shared)
            if member is None or member is WAIT:
                break
            if {k: member[0].params.get(k) for k in shared} != shared:  # a queued trial with values of its own
                self.pending.append(member)
                break
            members.append(member)
        return members

    def _pooled_search(self) -> list | None:
        """Ask search trials into the pool until one group is full (it runs), the pool is at its limit or the search
        has all its trials (then its largest group runs as it is); None when the pool is empty."""
        while len(self.pool) < self.pool.limit:
            member = self._search_trial()
            if member is None:
                break
            full = self.pool.add(self.plan.shared_values(member[0].params), member, compat.trial_id(member[0]))
            if full:
                return full
        return self.pool.take_largest()

    def _search_trial(self):
        if started(self.study) >= self.plan.n_trials:
            return None
        trial = within_total(self.study, ask(self.study), self.plan.n_trials)
        if trial is None:
            return None  # another worker took the last search trial: its end decides what comes next
        # the baseline and warm-start trials came with their role
        claim(trial, self.plan.run_settings, {} if ROLE_ATTR in trial.user_attrs else {ROLE_ATTR: "search"})
        return trial, configured(self.configure, trial, self.study)

    def _confirmation_trial(self, jobs: list):
        """The next confirmation trial: trial number i of the confirmation study runs job i."""
        study = self.confirm_study
        if len(study.get_trials(deepcopy=False, states=STARTED_STATES)) >= len(jobs):
            return None
        trial = within_total(study, ask(study), len(jobs), search=False)
        if trial is None:
            return WAIT
        job = jobs[trial.number]
        self.confirm_sampler.fixed[trial.number] = job.params  # before the trial suggests its values (in configure)
        claim(trial, self.plan.run_settings, confirmation.marks(job))
        return trial, [*configured(self.configure, trial, study), f"seed={job.seed}", f"split_seed={self.split_seed}"]


def configured(configure: Callable, trial: optuna.Trial, study: optuna.Study) -> list[str]:
    """The trial's overrides; the user attributes that configuring sets (the official sweeper's fixed parameters,
    one each) are written together, once its values are suggested."""
    with compat.collected_user_attrs(trial):
        return configure(trial, study)


def ask(study: optuna.Study) -> optuna.Trial:
    with warnings.catch_warnings():  # our trials do keep heartbeats, outside Study.optimize (see Heartbeat)
        warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used with Study.optimize")
        return study.ask()


def within_total(study: optuna.Study, trial: optuna.Trial, total: int, search: bool = True) -> optuna.Trial | None:
    """Workers that counted the study at the same moment may ask for more trials than the total between them.
    Trial numbers are given out atomically, so a trial preceded by `total` or more counted trials (by number) is one
    too many: it goes back to the queue as WAITING, where it counts as not started (a later ask, here or on resume,
    takes it up again). In the search, interrupted trials do not count (see study.counted); in the confirmation
    study every trial does (trial number i runs job i)."""
    place = counted(study).index(trial.number) + 1 if search else trial.number + 1
    if place <= total:
        return trial
    compat.set_trial_waiting(study, trial)
    log.info("Trial %d is past the study's %d trials (other workers took the last ones): left WAITING",
             trial.number, total)
    return None


def job_outcome(ret) -> dict:
    """A job's end as a population member's is written: {"value": v}, {"pruned": why} or {"failed": why}."""
    outcome = compat.return_value(ret)
    if ret.status == JobStatus.COMPLETED:
        return {"value": outcome}
    if isinstance(outcome, optuna.TrialPruned):
        return {"pruned": str(outcome)}
    return {"failed": f"{type(outcome).__name__}: {first_line(outcome)}"}


def population_outcomes(ret, trials: list) -> list:
    """Each member's outcome from a population job's return value; if the job itself failed, each member failed."""
    if ret.status != JobStatus.COMPLETED:
        failed = job_outcome(ret)
        return [(trial, failed) for trial in trials]
    results = compat.return_value(ret)
    return [(trial, results.get(trial.number, {"failed": "the population job returned nothing for it"}))
            for trial in trials]


def tell(study: optuna.Study, trial: optuna.Trial, outcome: dict) -> TrialState:
    """Record how the trial's job ended: COMPLETE with a finite number, PRUNED, or FAIL with the reason."""
    values, reason = None, outcome.get("failed")
    if "value" in outcome:
        value = outcome["value"]  # a number, or a list of them (several objectives)
        try:
            values = [float(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        except (TypeError, ValueError):
            reason = f"the job returned {value!r}, not a number"
        else:
            if len(values) != len(study.directions):
                values, reason = None, f"the job returned {len(values)} value(s) for {len(study.directions)} objectives"
            elif not all(math.isfinite(v) for v in values):
                values, reason = None, f"the job returned {value}"
    if values is not None:
        state = TrialState.COMPLETE
    elif "pruned" in outcome:
        state = TrialState.PRUNED
    else:
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
