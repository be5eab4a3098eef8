"""sweeplab: Hydra-composed, Optuna-searched, MLflow-tracked PyTorch training jobs."""
import sys


def main(config_path: str = "conf", config_name: str = "config") -> None:
    """A project's whole train.py: `from sweeplab import main; main(config_path="conf", config_name="config")`.

    config_path is relative to the calling script, as in @hydra.main; its primary config lists `sweeplab` and the
    config groups in its defaults and reaches sweeplab's groups with `hydra.searchpath: [pkg://sweeplab.conf]`."""
    from sweeplab.cli import main as run  # imported here: `import sweeplab` stays light for the job's own modules

    run(config_path, config_name, caller_file=sys._getframe(1).f_globals.get("__file__"))
