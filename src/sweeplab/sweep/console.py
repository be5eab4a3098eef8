"""A quiet console for a sweep: one short line per launched job — the trial and the values that vary — instead
of the launchers' own lines (the full override list, with the job's link to its trial, joblib's settings and the
output folder), which stay available at DEBUG (`hydra.verbose=true`)."""
import json
import logging
import os
import re

from sweeplab.labels import values_text
from sweeplab.names import TRIAL_ENV

LAUNCHER_LOGGERS = (  # where Hydra's launchers log each launch
    "hydra._internal.core_plugins.basic_launcher",
    "hydra_plugins.hydra_joblib_launcher._core",
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher",
)
JOB_LINE = re.compile(r"^\t#(\d+) : (.*)$", re.S)
LINK = re.compile(rf"\+\+hydra\.job\.env_set\.{TRIAL_ENV}='((?:[^'\\]|\\.)*)'")
CHATTER = ("Launching ", "Joblib.Parallel(", "Joblib.Parallel (")
log = logging.getLogger("sweeplab.sweep")


class LaunchLines(logging.Filter):
    """Turns a launcher's `#<n> : <overrides>` line into `Trial <n>: bs16 lr3.1e-3` (the searched keys' values;
    a confirmation's seed; a population's members) and drops its other INFO lines."""

    def __init__(self, searched):
        super().__init__()
        self.searched = set(searched)

    def filter(self, record: logging.LogRecord) -> bool:
        if log.isEnabledFor(logging.DEBUG) or record.levelno > logging.INFO:
            return True
        message = record.getMessage()
        match = JOB_LINE.match(message)
        if match:
            record.msg, record.args = launch_line(int(match.group(1)), match.group(2), self.searched), ()
            return True
        return not message.startswith(CHATTER)


def launch_line(number: int, overrides: str, searched: set) -> str:
    """The launcher's space-separated override list (the link to the trial is JSON with spaces in it) as a line."""
    link = {}
    found = LINK.search(overrides)
    if found:
        try:
            link = json.loads(found.group(1).replace("\\'", "'"))
        except ValueError:
            pass
        overrides = overrides[:found.start()] + overrides[found.end():]
    values, seed = {}, None
    for override in overrides.split():
        key, _, value = override.partition("=")
        if key in searched:
            values[key] = value
        elif key == "seed":
            seed = value
    text = " ".join(values_text(values))
    if "population" in link:
        numbers = [member["number"] for member in link["population"]]
        return f"Trials {', '.join(map(str, numbers))} (one stacked job): {text}"
    if not link:  # a grid's job
        return f"Job {number}: {text}"
    if seed:  # a trial of the confirmation study, numbered there
        return f"Confirmation {number}: {text} seed{seed}"
    return f"Trial {number}: {text}"


def quiet_launchers(searched) -> None:
    """Install the filter on the launchers' loggers (once per process), and keep MLflow's artifact progress bars
    (a resumed study's table download) off the console."""
    for name in LAUNCHER_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, LaunchLines)]:
            logger.removeFilter(old)
        logger.addFilter(LaunchLines(searched))
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
