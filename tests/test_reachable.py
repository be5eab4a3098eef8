"""`python -m sweeplab.data.reachable mnist` (used by `make run`), with the network replaced by stubs."""
import runpy
import sys
import urllib.error

import pytest

from tests.helpers import write_mnist


@pytest.fixture
def network(monkeypatch):
    """Record every URL asked for; answer as `network.up` says."""
    state = type("Network", (), {"up": False, "asked": []})()

    def urlopen(request, timeout):
        state.asked.append((request.full_url, request.get_method(), timeout))
        if not state.up:
            raise urllib.error.URLError("offline")
        return type("Response", (), {"close": lambda self: None})()

    monkeypatch.setattr("urllib.request.urlopen", urlopen)
    return state


def reachable(monkeypatch, *args) -> int:
    monkeypatch.setattr(sys, "argv", ["reachable", *args])
    with pytest.raises(SystemExit) as exited:
        runpy.run_module("sweeplab.data.reachable", run_name="__main__")
    return exited.value.code


def test_offline_without_files_is_unreachable(tmp_path, monkeypatch, network):
    assert reachable(monkeypatch, "mnist", "--data-dir", str(tmp_path)) == 1
    assert network.asked and all(method == "HEAD" and timeout <= 5 for _, method, timeout in network.asked)
    assert network.asked[0][0].endswith("train-images-idx3-ubyte.gz")


def test_a_mirror_that_answers_is_reachable(tmp_path, monkeypatch, network):
    network.up = True
    assert reachable(monkeypatch, "mnist", "--data-dir", str(tmp_path)) == 0


@pytest.mark.parametrize("where", ["data_dir", "extra_data_dirs"])
def test_local_files_need_no_network(tmp_path, monkeypatch, network, where):
    if where == "data_dir":
        write_mnist(tmp_path / "MNIST" / "raw", gz=False)
        args = ["--data-dir", str(tmp_path)]
    else:
        write_mnist(tmp_path / "extra")
        args = ["--data-dir", str(tmp_path / "data"), "--extra-data-dirs", str(tmp_path / "extra")]
    assert reachable(monkeypatch, "mnist", *args) == 0
    assert network.asked == []
