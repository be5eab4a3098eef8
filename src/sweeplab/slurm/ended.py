"""Jobs that SLURM ended before they returned (scancel, the time limit, a failed node), and jobs sbatch refused:
their trials fail with the scheduler's own words, and the sweep goes on with its other trials.

Two ways reach here. A job killed outright leaves no result, and submitit raises UncompletedJobError in the
sweeping process once the scheduler reports the job's end. A job warned of its time limit (SIGUSR2, `signal_delay_s`
before it) ends itself through submitit's handler, which raises UncompletedJobError inside the job; Hydra returns it
as the job's failure."""
import re
from pathlib import Path

from hydra.core.utils import JobReturn, JobStatus

from sweeplab import compat

WHY = {
    "TIMEOUT": "reached its time limit (hydra.launcher.timeout_min)",
    "CANCELLED": "was cancelled (scancel)",
    "NODE_FAIL": "lost its node",
    "BOOT_FAIL": "could not boot its node",
    "OUT_OF_MEMORY": "ran out of memory (hydra.launcher.mem_gb)",
    "PREEMPTED": "was preempted",
    "DEADLINE": "missed its deadline",
    "FAILED": "failed",
    "ENDED": "ended (squeue no longer lists it)",
}
SLURM_NOTE = re.compile(r"\*\*\* ((?:JOB|STEP) \S+ ON \S+ [^*]*?) \*\*\*")  # slurmstepd's own line in the job's log


class SlurmJobEnded(RuntimeError):
    """SLURM ended the trial's job before it returned a result."""


def failed_return(error: BaseException) -> JobReturn:
    return JobReturn(status=JobStatus.FAILED, _return_value=error)  # as Hydra returns a job that raised


def reason(job_id: str, state: str, log_text: str = "") -> str:
    """`SLURM job 12_0 was cancelled (scancel): JOB 12 ON node1 CANCELLED AT 2026-12-04T18:56:45`."""
    state = state.split()[0].upper() if state.strip() else "UNKNOWN"
    notes = sorted(SLURM_NOTE.findall(log_text), key=lambda note: not note.startswith("JOB"))  # the job's first
    return f"SLURM job {job_id} {WHY.get(state, f'ended {state}')}" + (f": {notes[0]}" if notes else f" ({state})")


def from_error(error: Exception) -> str:
    """The reason in submitit's UncompletedJobError ("Job 12_0 (task: 0) ... (state: CANCELLED)" and the job's error
    stream) or FailedJobError (sbatch refused the job)."""
    text = str(error)
    found = re.search(r"Job (\S+) \(task: \d+\).*?\(state: ([^)]*)\)", text, re.S)
    if found:
        return reason(found.group(1), found.group(2), text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    sbatch = next((line for line in lines if line.startswith("sbatch: error:")), None)
    if sbatch:
        return f"SLURM refused the job ({sbatch})"
    raised = [line for line in lines if re.match(r"[\w.]+(Error|Exception|Interrupt)\b", line)]  # the job's traceback
    return f"SLURM job failed: {(raised or lines or [type(error).__name__])[-1 if raised else 0]}"


def check(launch):
    """`launch(overrides, number) -> JobReturn`, with the jobs SLURM ended turned into failed JobReturns."""
    from submitit.core.utils import FailedJobError, UncompletedJobError

    def launch_on_slurm(overrides: list[str], number: int) -> JobReturn:
        try:
            ret = launch(overrides, number)
        except (UncompletedJobError, FailedJobError) as error:
            return failed_return(SlurmJobEnded(from_error(error)))
        raised = compat.return_value(ret) if ret.status == JobStatus.FAILED else None
        if isinstance(raised, UncompletedJobError) and ret.hydra_cfg is not None:  # ended by submitit's handler
            job_id = str(ret.hydra_cfg.hydra.job.id)
            state = "TIMEOUT" if "timed-out" in str(raised) else "PREEMPTED"  # warned by SIGUSR2 of which
            return failed_return(SlurmJobEnded(reason(job_id, state, _log(ret, job_id))))
        return ret

    return launch_on_slurm


def _log(ret: JobReturn, job_id: str) -> str:
    """The job's error stream, in submitit's folder (`.submitit/<job id>/<job id>_0_log.err`)."""
    folder = str(ret.hydra_cfg.hydra.launcher.submitit_folder).replace("%j", job_id.split("_")[0])
    try:
        return "".join(path.read_text(errors="replace") for path in Path(folder).glob("*.err"))
    except OSError:
        return ""
