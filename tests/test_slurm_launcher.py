"""sweeplab.slurm without a cluster: how it reads what sinfo says of a cluster with GPUs, and how it words the end
of a job that SLURM ended (tests/scaleout/test_slurm.py runs the same against a real scheduler)."""
import pytest

from sweeplab.errors import ConfigError
from sweeplab.slurm import cluster, ended

# What `sinfo` prints for a cluster with a CPU partition (the default) and a GPU partition.
SINFO = {
    "--format=%P": "cpu*\ngpu\n",
    "--partition=cpu": "c1|64|257000|(null)\nc2|64|257000|(null)\n",
    "--partition=gpu": "g1|32|515000|gpu:a100:4(S:0-1)\ng2|16|128000+|gpu:2,mps:100\n",
}


@pytest.fixture
def gpu_cluster(monkeypatch):
    monkeypatch.setattr(cluster, "sinfo", lambda *args: next(out for key, out in SINFO.items() if key in args))


def test_gres_strings_count_gpus():
    assert [cluster.gpu_count(g) for g in ("gpu:4", "gpu:a100:2(S:0-1)", "gpu:a100:2,gpu:v100:1", "(null)",
                                           "mps:100,gpu:2")] == [4, 2, 3, 0, 2]


def test_one_gpu_per_trial_where_the_partition_has_gpus_and_none_elsewhere(gpu_cluster):
    request = {"cpus_per_task": 4, "mem_gb": 8, "gpus_per_node": None}
    assert cluster.fit({**request, "partition": "gpu"}) == (
        {"gpus_per_node": 1},
        "SLURM partition gpu (2 nodes, largest g1: 32 CPUs, 502.9 GB, 4 GPUs): each trial asks for 4 CPUs, 8 GB, 1 GPU")
    assert cluster.fit({**request, "partition": None})[0] == {}  # the default partition, cpu: no GPU
    with pytest.raises(ConfigError) as refused:
        cluster.fit({**request, "partition": None, "gpus_per_node": 1})
    assert str(refused.value) == ("SLURM partition 'cpu' has no GPUs, and hydra.launcher.gpus_per_node=1 asks for 1 "
                                  "per trial; set hydra.launcher.gpus_per_node=0 to train on CPUs, or "
                                  "hydra.launcher.partition=gpu")


def test_a_request_too_large_for_every_node_names_the_largest_and_the_overrides(gpu_cluster):
    with pytest.raises(ConfigError) as refused:
        cluster.fit({"partition": "gpu", "cpus_per_task": 48, "mem_gb": 600, "gpus_per_node": 8})
    assert str(refused.value) == (
        "no node of SLURM partition 'gpu' can run a trial that asks for 48 CPUs, 600 GB, 8 GPUs: its largest is g1: "
        "32 CPUs, 502.9 GB, 4 GPUs; set hydra.launcher.cpus_per_task=32 hydra.launcher.mem_gb=502 "
        "hydra.launcher.gpus_per_node=4")
    with pytest.raises(ConfigError, match=r"no partition 'a100' here \(its partitions: cpu, gpu\)"):
        cluster.fit({"partition": "a100", "cpus_per_task": 1, "mem_gb": 1, "gpus_per_node": None})


def test_the_end_of_a_job_in_the_schedulers_words():
    err = ("Job 12_0 (task: 0) with path /s/.submitit/12/12_0_result.pkl\nhas not produced any output (state: "
           "TIMEOUT)\nError stream produced:\n----\nslurmstepd: error: *** STEP 12.0 ON n1 CANCELLED AT "
           "2026-12-04T18:58:11 DUE TO TIME LIMIT ***\nslurmstepd: error: *** JOB 12 ON n1 CANCELLED AT "
           "2026-12-04T18:58:11 DUE TO TIME LIMIT ***\n")
    assert ended.from_error(RuntimeError(err)) == ("SLURM job 12_0 reached its time limit (hydra.launcher.timeout_min)"
                                                   ": JOB 12 ON n1 CANCELLED AT 2026-12-04T18:58:11 DUE TO TIME LIMIT")
    assert ended.reason("7_0", "CANCELLED by 0") == "SLURM job 7_0 was cancelled (scancel) (CANCELLED)"
    assert ended.reason("7_0", "NODE_FAIL") == "SLURM job 7_0 lost its node (NODE_FAIL)"
    refused = "Could not submit\nsbatch: error: Batch job submission failed: Invalid account or account/partition"
    assert ended.from_error(RuntimeError(refused)) == (
        "SLURM refused the job (sbatch: error: Batch job submission failed: Invalid account or account/partition)")
    crashed = ("Job (task=0) failed during processing with trace:\n----------------------\nTraceback (most recent call "
               "last):\n  File \"x.py\", line 1, in <module>\nomegaconf.errors.ConfigKeyError: Key 'foo' is not in "
               "struct\n----------------------\nYou can check full logs with 'job.stderr(0)'")
    assert ended.from_error(RuntimeError(crashed)) == (
        "SLURM job failed: omegaconf.errors.ConfigKeyError: Key 'foo' is not in struct")


def test_squeue_lines_give_job_states_and_a_bad_poll_interval_is_one_line(monkeypatch):
    from sweeplab.slurm import watcher

    poller = watcher.QueueWatcher(poll_s=5)
    poller.register_job("12_0")
    poller._info_dict.update(poller.read_info("12_0|CANCELLED|None|n1\n13_0|PENDING|ReqNodeNotAvail|\n"))
    assert poller.get_state("12_0", mode="cache") == "CANCELLED" and poller.is_done("12_0", mode="cache")
    assert not poller.is_done("13_0", mode="cache")  # a job waiting for a drained node has not ended
    monkeypatch.setenv("SWEEPLAB_SLURM_POLL_S", "0.5")
    with pytest.raises(ConfigError, match=r"SWEEPLAB_SLURM_POLL_S must be a whole number of seconds >= 1 \(got '0.5'\)"):
        watcher.install()
