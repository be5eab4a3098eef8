"""Job states for submitit where the cluster keeps no accounting database.

submitit asks `sacct` for the state of its jobs. Many small clusters run without accounting: sacct then fails on
every poll, submitit logs "Bypassing sacct error ..., status may be inaccurate" each time, and a job that ends
without a result (cancelled, killed at its time limit) stays UNKNOWN, so the sweep waits for it forever. Where sacct
fails, this watcher asks `squeue`, which lists a finished job with its final state for MinJobAge (300 s by default)
after it ends; a job that squeue no longer lists has ended too."""
import logging
import os
import subprocess
import threading
import time

from sweeplab import compat
from sweeplab.errors import ConfigError

log = logging.getLogger(__name__)
# The longest wait between two polls of squeue (submitit polls more often just after a submission);
# SWEEPLAB_SLURM_POLL_S changes it (the tests use 2 s).
POLL_S = 30
GONE = "ENDED"  # the state of a job that squeue no longer lists
# States of a job that has not ended yet (squeue's names); any other state is final.
WAITING = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD",
           "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "PREEMPTED", "RESV_DEL_HOLD", "UNKNOWN", "READY"}


def accounting_error() -> str | None:
    """Why sacct cannot report jobs here (its first line of error), or None when it can."""
    try:
        result = subprocess.run(["sacct", "--noheader", "--parsable2", "--allocations", "--starttime=now",
                                 "--format=JobID"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as error:
        return str(error)
    if result.returncode == 0:
        return None
    return (result.stderr.strip() or result.stdout.strip() or f"exit code {result.returncode}").splitlines()[0]


class QueueWatcher(compat.SlurmInfoWatcher):
    """submitit's SLURM watcher, polling squeue instead of sacct (and at least every POLL_S seconds)."""

    def __init__(self, poll_s: int = POLL_S) -> None:
        super().__init__(delay_s=poll_s)
        self.poll_s = poll_s
        self._lock = threading.Lock()  # the sweep's trial slots wait on their jobs in parallel threads
        self._submitted: dict[str, float] = {}

    def register_job(self, job_id: str) -> None:
        self._submitted.setdefault(job_id, time.time())
        super().register_job(job_id)

    def _make_command(self) -> list[str] | None:
        to_check = {job_id.split("_")[0] for job_id in self._registered - self._finished}
        if not to_check:
            return None
        return ["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T|%r|%N",
                f"--jobs={','.join(sorted(to_check))}"]

    def read_info(self, string) -> dict[str, dict[str, str]]:
        if isinstance(string, bytes):
            string = string.decode()
        info = {}
        for line in string.splitlines():
            if line.count("|") == 3:
                job_id, state, reason, nodes = line.strip().split("|")
                info[job_id] = {"JobID": job_id, "State": state, "Reason": reason, "NodeList": nodes}
        return info

    def is_done(self, job_id: str, mode: str = "standard") -> bool:
        return self.get_state(job_id, mode=mode).split()[0].upper() not in WAITING

    def update(self) -> None:
        with self._lock:
            command = self._make_command()
            if command is None:
                return
            self._num_calls += 1
            try:
                result = subprocess.run(command, capture_output=True, text=True, timeout=60)
            except (OSError, subprocess.SubprocessError) as error:
                result = subprocess.CompletedProcess(command, 1, "", str(error))
            listed = self.read_info(result.stdout) if result.returncode == 0 else {}
            # squeue fails outright when it knows none of the jobs asked for ("Invalid job id specified"); any
            # other failure (the controller does not answer) leaves the states as they were, asked again later.
            forgotten = result.returncode == 0 or "Invalid job id" in result.stderr
            if not forgotten:
                log.debug("squeue failed (%s); job states are asked again later", result.stderr.strip())
            for job_id in self._registered - self._finished:
                if job_id in listed:
                    self._info_dict[job_id] = listed[job_id]
                elif forgotten and (job_id in self._info_dict or time.time() - self._submitted[job_id] > self.poll_s):
                    # listed before, or submitted long enough ago that squeue would list it: the job has ended
                    self._info_dict[job_id] = {**self._info_dict.get(job_id, {}), "State": GONE}
            self._last_status_check = time.time()
            for job_id in self._registered - self._finished:
                if self.is_done(job_id, mode="cache"):
                    self._finished.add(job_id)


def install() -> str | None:
    """Follow SLURM jobs with squeue where sacct cannot report them; the one line that says so, or None."""
    poll_s = os.environ.get("SWEEPLAB_SLURM_POLL_S", str(POLL_S))
    if not poll_s.isdigit() or int(poll_s) < 1:
        raise ConfigError(f"SWEEPLAB_SLURM_POLL_S must be a whole number of seconds >= 1 (got {poll_s!r})")
    error = accounting_error()
    if error is None:
        return None
    compat.SlurmJob.watcher = QueueWatcher(int(poll_s))
    return f"SLURM keeps no job accounting here (sacct: {error}): sweeplab follows its jobs with squeue"
