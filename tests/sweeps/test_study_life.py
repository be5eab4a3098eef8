"""Issue 19: a study's life — extend it, change it, warm-start from it, prune it, interrupt it — and its answer stays
right, or one line says why it can't. Real sweeps on digits; each module fixture is one study's story."""
import re
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from sweeplab.names import (
    CONFIRMS_ATTR, FAIL_REASON_ATTR, JOURNAL_FILE, PRUNER_ATTR, RESULTS_FILE, ROLE_ATTR, RUN_ID_ATTR, RUN_SETTINGS_ATTR, SEED_ATTR,
    WARM_START_ATTR,
)
from tests.helpers import PROJECT_ROOT, clean_env, wait_for

pytestmark = pytest.mark.slow

CONFIRM = ("hydra.sweeper.confirm.top_k=1", "hydra.sweeper.confirm.seeds=2")


def key(trial) -> tuple:
    return tuple(sorted(trial.params.items())), trial.user_attrs[SEED_ATTR]


def roles(trials) -> list[str]:
    return [t.user_attrs.get(ROLE_ATTR) for t in trials]


@pytest.fixture(scope="module")
def extended(new_sweep):
    """One study under its default name, grown 3 -> 5 -> 8 search trials with confirmation on; a snapshot of both
    studies after each run."""
    space = new_sweep("extended")
    snapshots = []
    for n_trials in (3, 5, 8):
        code, out, err = space.run(f"hydra.sweeper.n_trials={n_trials}", *CONFIRM)
        assert code == 0, err[-3000:]
        snapshots.append((n_trials, space.study().trials, space.confirm_study().trials, out))
    return space, snapshots


def test_extending_runs_the_missing_search_trials_and_confirms_the_new_top_k(extended):
    space, snapshots = extended
    confirmed_before = []
    for n_trials, search, confirm, out in snapshots:
        assert len(search) == n_trials and roles(search[:1]) == ["baseline"]
        assert set(roles(search[1:])) == {"search"} and set(roles(confirm)) == {"confirm"}
        assert all(t.state == TrialState.COMPLETE for t in search + confirm)
        assert len({key(t) for t in confirm}) == len(confirm)  # no (configuration, seed) trained twice
        best = max(search, key=lambda t: t.value)
        for source in (best, search[0]):  # the current top 1 and the baseline, each on both fresh seeds
            assert len([t for t in confirm if t.params == source.params]) == 2, (n_trials, source.number)
        assert all(search[t.user_attrs[CONFIRMS_ATTR]].params == t.params for t in confirm)
        assert [(t.number, key(t)) for t in confirm[:len(confirmed_before)]] == confirmed_before  # kept, not redone
        confirmed_before = [(t.number, key(t)) for t in confirm]
        assert f"Best val_accuracy {best.value:.4f} at trial {best.number}" in out


def test_every_best_is_the_search_s_best_as_optuna_dashboard_reads_the_journal(extended):
    space, _ = extended
    (name,) = [n for n in optuna.get_all_study_names(space.storage()) if not n.endswith(".confirm")]
    study = optuna.load_study(study_name=name, storage=space.storage())  # what optuna-dashboard opens
    search_best = max(study.trials, key=lambda t: t.value)
    assert study.best_trial.number == search_best.number
    assert study.best_trial.user_attrs[ROLE_ATTR] in ("search", "baseline")
    results = yaml.safe_load((space.dir / RESULTS_FILE).read_text())
    assert results["search_best"]["best_trial"] == search_best.number
    assert results["confirmed"]["best"]["trial"] in [t.number for t in study.trials]
    (parent,) = space.parents()
    assert parent.data.tags["best_trial"] == str(search_best.number)
    assert parent.data.tags["confirmed_trial"] == str(results["confirmed"]["best"]["trial"])
    confirm = optuna.load_study(study_name=name + ".confirm", storage=space.storage())
    assert "re-seeded repeats" in confirm.user_attrs["sweeplab.note"]


def test_a_warm_start_queues_the_best_configurations_inside_the_new_space(extended):
    space, _ = extended
    source = space.study()
    confirmed = yaml.safe_load((space.dir / RESULTS_FILE).read_text())["confirmed"]["best"]["params"]
    batch = confirmed["batch_size"]
    code, out, err = space.run("hydra.sweeper.study_name=warm", f"hydra.sweeper.warm_start={source.study_name}",
                               f"batch_size=choice({batch})", "epochs=3", "hydra.sweeper.n_trials=2",
                               "hydra.sweeper.confirm.top_k=0")
    assert code == 0, err[-3000:]
    warm = space.study("warm")
    first = warm.trials[0] if batch != 128 else warm.trials[1]  # the baseline (batch 128) comes first if inside
    assert first.params == confirmed and first.user_attrs[WARM_START_ATTR].startswith(f"{source.study_name}#")
    assert warm.user_attrs[WARM_START_ATTR] == source.study_name
    skipped = {tuple(sorted(t.params.items())) for t in source.trials if t.params["batch_size"] != batch}
    line = next(line for line in (out + err).splitlines() if "Warm start from study" in line)
    assert ("outside this search space skipped" in line) == bool(skipped), line


@pytest.fixture(scope="module")
def named(new_sweep):
    """A study the user named: 2 trials, then 6 with Hyperband and confirmation, then a changed question."""
    space = new_sweep("named")
    study = ("hydra.sweeper.study_name=named", "epochs=3")
    runs = [space.run(*study, "hydra.sweeper.n_trials=2", "hydra.sweeper.confirm.top_k=0")]
    runs.append(space.run(*study, "hydra.sweeper.n_trials=6", "hydra/sweeper/pruner=hyperband",
                          "hydra.sweeper.confirm.top_k=2", "hydra.sweeper.confirm.seeds=1"))
    for code, _, err in runs:
        assert code == 0, err[-3000:]
    return space, runs


def test_pruners_prune_the_search_only_and_never_after_the_last_epoch(named):
    space, _ = named
    search, confirm = space.study("named").trials, space.confirm_study("named").trials
    assert search[0].user_attrs[ROLE_ATTR] == "baseline" and search[0].state == TrialState.COMPLETE
    assert confirm and all(t.state == TrialState.COMPLETE for t in confirm)
    for trial in search:
        if trial.state == TrialState.PRUNED:
            assert trial.user_attrs[ROLE_ATTR] == "search" and len(trial.intermediate_values) < 3


def test_settings_that_do_not_change_the_question_are_recorded_per_trial(named):
    space, _ = named
    study = space.study("named")
    pruners = [(t.user_attrs[RUN_SETTINGS_ATTR]["pruner"] or {}).get("_target_") for t in study.trials]
    assert pruners == ["optuna.pruners.NopPruner"] * 2 + ["optuna.pruners.HyperbandPruner"] * 4
    assert study.user_attrs[PRUNER_ATTR]["_target_"] == "optuna.pruners.NopPruner"  # what the first trials used


def test_a_named_study_asked_another_question_stops_in_one_line(named):
    space, _ = named
    before = len(space.study("named").trials), len(space.runs())
    code, out, err = space.run("hydra.sweeper.study_name=named", "epochs=4", "hydra.sweeper.n_trials=7")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in out + err, err
    assert lines[0].startswith("error: study named answers another question (epochs: 3 -> 4)")
    assert "hydra.sweeper.study_name=" in lines[0] and "rerun with its settings" in lines[0]
    assert (len(space.study("named").trials), len(space.runs())) == before  # no work done


def test_a_changed_space_under_the_default_name_is_a_new_study(new_sweep):
    space = new_sweep("changed")
    folder = f"hydra.sweep.dir={space.root}/multirun/${{hydra.sweeper.study_name}}"  # as the default folder is
    for extra in ((), ("model.width=choice(16,32)",)):
        code, out, err = space.run(folder, "hydra.sweeper.n_trials=2", *extra)
        assert code == 0, err[-3000:]
    first, second = sorted((space.root / "multirun").iterdir(), key=lambda p: p.stat().st_mtime)
    assert re.fullmatch(r"digits-ffn256-adam-2ep-[0-9a-f]{6}", first.name) and first.name != second.name
    for folder_, searched in ((first, {"batch_size", "optimizer.lr"}),
                              (second, {"batch_size", "optimizer.lr", "model.width"})):
        journal = JournalFileBackend(str(folder_ / JOURNAL_FILE))
        study = optuna.load_study(study_name=folder_.name, storage=JournalStorage(journal))
        assert len(study.trials) == 2 and all(set(t.params) == searched for t in study.trials)


def start(space, *extra) -> tuple[subprocess.Popen, Path, Path]:
    """A sweep in its own session, its stdout and stderr in files (a pipe nobody reads fills up, and the sweep
    blocks on its next log line)."""
    out, err = space.root / "started-out.log", space.root / "started-err.log"
    with open(out, "w") as out_file, open(err, "w") as err_file:
        process = subprocess.Popen([sys.executable, *space.argv(*extra)], cwd=PROJECT_ROOT, env=clean_env(),
                                   stdout=out_file, stderr=err_file, start_new_session=True)
    return process, out, err


def training(space, study_of, role: str):
    """The trial of this role that is training (an epoch reported) right now, if any."""
    try:
        trials = study_of().trials if space.journal.exists() else []
    except KeyError:  # not created yet
        return None
    return next((t for t in trials if t.state == TrialState.RUNNING and t.intermediate_values
                 and t.user_attrs.get(ROLE_ATTR) == role and RUN_ID_ATTR in t.user_attrs), None)


def interrupt(space, study_of, role: str, *extra) -> tuple:
    process, out, err = start(space, *extra)
    try:
        try:
            trial = wait_for(lambda: training(space, study_of, role), 300, interval=0.1,
                             what=f"a {role} trial to train", process=process)
        except AssertionError as caught:
            raise AssertionError(f"{caught}\n{err.read_text()[-3000:]}") from None
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    finally:
        process.kill()
    return process.returncode, out.read_text(), err.read_text(), trial


def test_ctrl_c_fails_the_running_trial_and_the_same_command_continues(new_sweep):
    space = new_sweep("interrupted")
    command = ("hydra.sweeper.study_name=ctrlc", "epochs=300", "hydra.sweeper.n_trials=2",
               "hydra.sweeper.confirm.top_k=1", "hydra.sweeper.confirm.seeds=1")
    code, out, err, baseline = interrupt(space, lambda: space.study("ctrlc"), "baseline", *command)
    assert code == 130 and "Traceback" not in out + err, out[-4000:] + err[-3000:]
    after = err[err.index("interrupted"):].strip().splitlines() if "interrupted" in err else []
    assert 1 <= len(after) <= 3 and after[0].startswith("interrupted (SIGINT): study ctrlc: 0 of 2 search"), err[-2000:]
    stopped = space.study("ctrlc").trials[baseline.number]
    assert stopped.state == TrialState.FAIL and stopped.user_attrs[FAIL_REASON_ATTR] == "interrupted"
    assert space.client().get_run(baseline.user_attrs[RUN_ID_ATTR]).info.status == "KILLED"
    (parent,) = space.parents()
    assert space.client().get_run(parent.info.run_id).info.status == "KILLED"

    # The rerun runs the baseline again; interrupted during confirmation, the next rerun finishes that job.
    code, out, err, repeat = interrupt(space, lambda: space.confirm_study("ctrlc"), "confirm", *command)
    assert code == 130, err[-3000:]
    code, out, err = space.run(*command)
    assert code == 0, err[-3000:]
    search, confirm = space.study("ctrlc").trials, space.confirm_study("ctrlc").trials
    baselines = [t for t in search if t.user_attrs[ROLE_ATTR] == "baseline"]
    assert [t.state for t in baselines] == [TrialState.FAIL, TrialState.COMPLETE]  # complete once, never twice
    assert len([t for t in search if t.state == TrialState.COMPLETE]) == 2
    assert confirm[repeat.number].user_attrs[FAIL_REASON_ATTR] == "interrupted"
    done = [key(t) for t in confirm if t.state == TrialState.COMPLETE]
    assert key(confirm[repeat.number]) in done and len(set(done)) == len(done)
    assert "Baseline " in out and "no baseline" not in out


def test_sigterm_stops_a_single_job_with_its_run_killed(new_sweep):
    space = new_sweep("terminated")
    argv = [a for a in space.argv("epochs=100000", optuna_sweeper=False) if a not in ("-m",)]
    argv = [a for a in argv if not a.startswith("hydra.sweep.dir=")] + [f"hydra.run.dir={space.root}/job"]
    process = subprocess.Popen([sys.executable, *argv], cwd=PROJECT_ROOT, env=clean_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_for(lambda: any(r.data.metrics for r in space.runs()), 300, what="the job to train an epoch",
                 process=process)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 143 and "Traceback" not in err, err[-3000:]
    assert err.strip().splitlines()[-1].startswith("interrupted (SIGTERM)")
    (run,) = space.runs()
    assert run.info.status == "KILLED"
