"""`hydra/launcher=slurm` through a real scheduler: a one-node SLURM cluster (tests/slurm.py: munged, slurmctld and
slurmd on 127.0.0.1, no accounting database) runs the trials of studies kept in the test PostgreSQL and tracked on
the authenticated MLflow server. Every job imports Python and torch afresh, so the studies are tiny."""
import re
import time

import pytest
from optuna.trial import TrialState

from sweeplab.errors import ConfigError
from sweeplab.names import CONFIRMS_ATTR, FAIL_REASON_ATTR, KIND_TAG, PARENT_TAG, ROLE_ATTR, STATE_TAG, WORKER_ATTR
from sweeplab.slurm import cluster

pytestmark = pytest.mark.slow
ON_ONE_CPU = ("hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1", "epochs=1")
POLL = {"SWEEPLAB_SLURM_POLL_S": "2"}  # how often the sweeper asks squeue (30 s by default)


def test_trials_and_populations_run_as_slurm_jobs(study, slurm):
    """Two slots, each running a population of two trials as one SLURM job (the confirmation runs through SLURM in
    the test below)."""
    code, log = study.run("w0", *ON_ONE_CPU, "hydra.sweeper.n_trials=4", "hydra.sweeper.population=2",
                          "hydra.sweeper.n_jobs=2", "~hydra.sweeper.params.batch_size",  # one batch size: full stacks
                          env={**slurm.env, **POLL})
    assert code == 0, log[-3000:]
    trials = study.study().get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4, [(t.number, t.state) for t in trials]
    assert [t.user_attrs[ROLE_ATTR] for t in trials] == ["baseline", "search", "search", "search"]
    # One SLURM job per population (its folder: population-<first trial>), each seen COMPLETED by SLURM.
    job_ids = [folder.name for folder in (study.root / "w0" / ".submitit").iterdir() if folder.name.isdigit()]
    populations = sorted(d.name for d in (study.root / "w0").glob("population-*"))
    assert len(job_ids) == 2 and populations == ["population-0", "population-2"], (job_ids, populations)
    states = {job["id"]: job["state"] for job in slurm.jobs()}
    assert all(states.get(job) == "COMPLETED" for job in job_ids), (job_ids, states)
    # One MLflow parent, a finished child per trial, nothing left RUNNING.
    runs = study.runs()
    (parent,) = [r for r in runs if r.data.tags.get(KIND_TAG) == "study"]
    assert parent.data.metrics["trials_complete"] == 4
    children = [r for r in runs if r.data.tags.get(PARENT_TAG) == parent.info.run_id]
    assert sorted(int(r.data.tags["optuna.trial"]) for r in children) == [t.number for t in trials]
    assert {r.info.status for r in runs} == {"FINISHED"}
    # The console is as quiet as a local sweep's: one line about the missing accounting, no poll warnings.
    assert log.count("SLURM keeps no job accounting here (sacct:") == 1, log[-3000:]
    assert "Bypassing sacct error" not in log and "status may be inaccurate" not in log
    assert re.search(r"SLURM partition debug \(1 node, largest sweeplab-node: \d+ CPUs.*each trial asks for 1 CPU, "
                     r"1 GB\n", log), log[:3000]


def test_jobs_the_scheduler_ends_fail_their_trials_and_a_rerun_finishes_the_study(study, slurm):
    """Trial 1's job hangs (its processes stopped) until SLURM kills it at its one-minute limit, trial 2's job is
    cancelled; the sweep goes on after the first failure and stops after the second (max_failure_rate). The rerun
    starts on a drained node: its jobs wait, and run once the node is resumed; the study ends with its confirmation
    done."""
    args = (*ON_ONE_CPU, "hydra.launcher.timeout_min=1", "hydra.launcher.signal_delay_s=0", "hydra.sweeper.n_jobs=2",
            "hydra.sweeper.n_trials=4", "hydra.sweeper.confirm.top_k=1", "hydra.sweeper.confirm.seeds=1",
            "hydra.sweeper.max_failure_rate=0.25")
    first = study.start("w0", *args, env={**slurm.env, **POLL})
    hung = running_job(study, slurm, "w0", trial=1)
    study.wait_for(lambda: any("submitit.core._submit" in cmd for cmd in slurm.processes(hung).values()), 60,
                   "the job's Python to start")
    slurm.hang(hung)
    slurm.run("scancel", running_job(study, slurm, "w0", trial=2))
    assert first.wait(300) == 1, first.log()[-3000:]
    assert "2 trials failed, more than max_failure_rate=0.25 of n_trials=4; stopped" in first.log()
    trials = study.study().get_trials(deepcopy=False)
    assert [t.state for t in trials[:4]] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.FAIL,
                                             TrialState.COMPLETE], [(t.number, t.state) for t in trials]
    assert re.fullmatch(r"SlurmJobEnded: SLURM job \S+ reached its time limit \(hydra.launcher.timeout_min\): "
                        r"JOB \d+ ON sweeplab-node CANCELLED AT \S+ DUE TO TIME LIMIT",
                        trials[1].user_attrs[FAIL_REASON_ATTR]), trials[1].user_attrs
    assert re.fullmatch(r"SlurmJobEnded: SLURM job \S+ was cancelled \(scancel\): JOB \d+ ON sweeplab-node "
                        r"CANCELLED AT \S+", trials[2].user_attrs[FAIL_REASON_ATTR]), trials[2].user_attrs
    # The sweep went on after the cancelled trial: this worker ran trial 3 too.
    assert trials[3].user_attrs[WORKER_ATTR] == trials[0].user_attrs[WORKER_ATTR]
    study.workers.remove(first)  # its exit code is checked: waits below watch the rerun only

    slurm.run("scontrol", "update", f"nodename={slurm.node}", "state=drain", "reason=sweeplab-test")
    rerun = study.start("w1", *args, env={**slurm.env, **POLL})
    waiting = study.wait_for(lambda: [j for j in slurm.jobs() if j["state"] == "PENDING"], 120, "a job to wait")
    time.sleep(3)  # it keeps waiting while the node is drained
    assert [j["state"] for j in slurm.jobs() if j["id"] == waiting[0]["id"]] == ["PENDING"], slurm.jobs()
    assert not [j for j in slurm.jobs() if j["state"] == "RUNNING"]
    slurm.run("scontrol", "update", f"nodename={slurm.node}", "state=resume")
    assert rerun.wait(300) == 0, rerun.log()[-3000:]

    trials = study.study().get_trials(deepcopy=False)
    assert len(trials) == 4, [(t.number, t.state) for t in trials]  # the failed search trials stay failed
    confirmation = study.confirm_study().get_trials(deepcopy=False)
    assert confirmation and all(t.state == TrialState.COMPLETE for t in confirmation), [t.state for t in confirmation]
    assert 0 in {t.user_attrs[CONFIRMS_ATTR] for t in confirmation}  # the baseline, repeated on a fresh seed
    runs = {int(r.data.tags["optuna.trial"]): r for r in study.runs()
            if PARENT_TAG in r.data.tags and r.data.tags["optuna.study"] == study.name}
    assert sorted(runs) == [t.number for t in trials]
    assert [runs[n].info.status for n in (1, 2)] == ["FAILED", "FAILED"]
    assert [runs[n].data.tags[STATE_TAG] for n in (1, 2)] == ["FAIL", "FAIL"]
    assert not [r for r in study.runs() if r.info.status == "RUNNING"]
    assert not [j for j in slurm.jobs() if j["state"] in ("PENDING", "RUNNING")]


def test_a_request_no_node_can_meet_is_refused_in_one_line_before_any_job(study, slurm, monkeypatch):
    (node,) = [line.split("|") for line in slurm.run("sinfo", "--noheader", "--Node", "--format=%c|%m").split()]
    cpus, memory, jobs_before = int(node[0]), f"{int(node[1]) / 1024:.1f} GB", slurm.jobs()
    code, log = study.run("w0", "hydra/launcher=slurm", f"hydra.launcher.cpus_per_task={cpus + 1}",
                          "hydra.launcher.mem_gb=1", env=slurm.env, timeout=120)
    assert code == 2
    assert log.strip().splitlines()[-1] == (
        f"error: no node of SLURM partition 'debug' can run a trial that asks for {cpus + 1} CPUs, 1 GB: its largest "
        f"is sweeplab-node: {cpus} CPUs, {memory}, no GPU; set hydra.launcher.cpus_per_task={cpus}")
    assert not study.exists() and slurm.jobs() == jobs_before
    # GPUs: asked for only where the partition has them (gpus_per_node: null), refused where it has none.
    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))
    request = {"partition": None, "cpus_per_task": 1, "mem_gb": 1}
    assert cluster.fit({**request, "gpus_per_node": None})[0] == {}
    with pytest.raises(ConfigError) as refused:
        cluster.fit({**request, "gpus_per_node": 1})
    assert str(refused.value) == ("SLURM partition 'debug' has no GPUs, and hydra.launcher.gpus_per_node=1 asks for 1 "
                                  "per trial; set hydra.launcher.gpus_per_node=0 to train on CPUs")


def running_job(study, slurm, worker: str, trial: int) -> str:
    """The SLURM job id of a trial once it runs, found by the trial's folder in the job's pickled overrides."""
    def find():
        running = {j["id"].split("_")[0] for j in slurm.jobs() if j["state"] == "RUNNING"}
        for pickled in (study.root / worker / ".submitit").glob("*/*_submitted.pkl"):
            if pickled.parent.name in running and re.search(rb"hydra\.sweep\.subdir=%d(?!\d)" % trial,
                                                            pickled.read_bytes()):
                return pickled.parent.name
        return None
    return study.wait_for(find, 180, f"the SLURM job of trial {trial} to run", poll_s=0.5)
