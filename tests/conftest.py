"""Fixtures for the single-job tests: synthetic MNIST files in the real idx format, a private workspace per test
(output folder, data folder, MLflow database) and one finished run to read back. Nothing touches the network;
the helpers themselves are in tests/helpers.py."""
import signal
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers import Workspace, migrated_mlflow_db, write_mnist

# A shell starts a background command (`make test &`, nohup) with SIGINT ignored, and every process a test starts
# would inherit that, so the sweeps that the Ctrl-C tests interrupt would never hear it. A handled SIGINT is reset to
# the default in each child, where Python turns it into KeyboardInterrupt as in a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def synthetic_mnist(tmp_path_factory) -> SimpleNamespace:
    """A folder holding synthetic MNIST as four *-ubyte.gz files (600 train / 100 test images)."""
    folder = tmp_path_factory.mktemp("mnist-gz")
    splits = write_mnist(folder)
    return SimpleNamespace(dir=folder, train=splits["train"], test=splits["test"])


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Path:
    return migrated_mlflow_db(tmp_path_factory.mktemp("mlflow-template") / "mlflow.db")


@pytest.fixture
def workspace(tmp_path, mlflow_template) -> Workspace:
    return Workspace(tmp_path, mlflow_template)


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, mlflow_template) -> SimpleNamespace:
    """One finished digits job (3 epochs) run through `train.py`, shared by the tracking and predict tests."""
    space = Workspace(tmp_path_factory.mktemp("finished-run"), mlflow_template)
    result = space.train("epochs=3")
    assert result.returncode == 0, result.stderr
    (run,) = space.runs()
    return SimpleNamespace(space=space, run=run, stdout=result.stdout)
