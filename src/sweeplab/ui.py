"""`python -m sweeplab.ui`: start `mlflow ui` on the project's database and open its runs table.

MLflow 3's UI opens every experiment in its GenAI view (traces, token usage) unless the address asks for the
model-training view or the browser remembers that choice: its sidebar switch "Machine learning", stored per
browser. The experiment's tags do not count in this UI build. This launcher opens the address that asks:
http://127.0.0.1:5000/#/experiments/<id>/runs?workflowType=machine_learning."""
import argparse
import subprocess
import sys
import time
import urllib.error
import urllib.request
import webbrowser
from pathlib import Path

from sweeplab.paths import project_root

RUNS_PAGE = "#/experiments/{}/runs?workflowType=machine_learning"


def runs_url(address: str, experiment_id: str | None) -> str:
    return f"{address}/{RUNS_PAGE.format(experiment_id)}" if experiment_id else f"{address}/#/experiments"


def experiment_id(tracking_uri: str, name: str) -> str | None:
    from mlflow.tracking import MlflowClient

    experiment = MlflowClient(tracking_uri).get_experiment_by_name(name)
    return experiment.experiment_id if experiment else None


def wait_until_up(address: str, process: subprocess.Popen, timeout_s: float = 180.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            urllib.request.urlopen(f"{address}/health", timeout=2).close()
            return True
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sweeplab.ui", description=__doc__.splitlines()[0])
    parser.add_argument("--backend-store-uri", default=f"sqlite:///{project_root() / 'mlflow.db'}",
                        help="the tracking database (default: mlflow.db in the current folder)")
    parser.add_argument("--experiment", default="sweeplab", help="the experiment whose runs to open")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--no-browser", action="store_true", help="print the address, open no browser")
    args = parser.parse_args(argv)
    if args.backend_store_uri.startswith("sqlite:///"):
        if not Path(args.backend_store_uri.removeprefix("sqlite:///")).is_file():
            sys.stderr.write(f"error: no MLflow database at {args.backend_store_uri}; run a job or a sweep first, "
                             f"or pass --backend-store-uri sqlite:///<path>/mlflow.db\n")
            return 2
    address = f"http://{args.host}:{args.port}"
    # One worker: a UI for one person starts in a quarter of the time of MLflow's default four.
    process = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", args.backend_store_uri,
                                "--host", args.host, "--port", str(args.port), "--workers", "1"])
    try:
        if not wait_until_up(address, process):
            sys.stderr.write(f"error: mlflow ui did not start on {address} (is the port taken? try --port)\n")
            process.terminate()
            return 2
        url = runs_url(address, experiment_id(args.backend_store_uri, args.experiment))
        print(f"MLflow: {url}   (Ctrl-C stops it)", flush=True)
        if not args.no_browser:
            webbrowser.open(url)
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        process.wait(timeout=10)
        return 0


if __name__ == "__main__":
    sys.exit(main())
