"""Hydra composition: every group option composes and builds; the CLI lists groups and prints the config."""
import itertools

import pytest
import torch
import yaml

from tests.helpers import PROJECT_ROOT, compose, run_python
from sweeplab.building import build, build_model
from sweeplab.model import FeedForwardNet
from sweeplab.paths import PACKAGE_CONF


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (PACKAGE_CONF / group).glob("*.yaml"))


def test_groups_have_the_issue_options():
    assert {"mnist", "fashion_mnist", "digits"} <= set(options("dataset"))
    assert {"adam", "adamw", "sgd"} <= set(options("optimizer"))
    assert len(options("model")) >= 3


COMBINATIONS = list(itertools.product(options("dataset"), options("model"), options("optimizer")))


@pytest.mark.parametrize("dataset,model,optimizer", COMBINATIONS)
def test_every_combination_composes_and_builds(dataset, model, optimizer, tmp_path):
    extra = [f"dataset.root={tmp_path}"] if dataset == "image_folder" else []  # the one source without a default
    cfg = compose(f"dataset={dataset}", f"model={model}", f"optimizer={optimizer}", *extra)
    assert cfg.dataset.name == dataset
    facts = {"input_shape": (1, 28, 28), "in_features": 784, "in_channels": 1, "num_classes": 10}
    net = build_model(cfg.model, facts)
    if model.startswith("ffn"):
        assert isinstance(net, FeedForwardNet) and net.dense[0].out_features == cfg.model.width
    opt = build(cfg.optimizer)(net.parameters())
    assert type(opt).__name__.lower() == optimizer and opt.defaults["lr"] == cfg.optimizer.lr
    assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    source = build(cfg.dataset.source)
    assert hasattr(source, "load")


def test_defaults_match_the_notes():
    cfg = compose()
    assert (cfg.dataset.name, cfg.model.width, cfg.batch_size, cfg.epochs) == ("mnist", 256, 128, 10)
    assert cfg.optimizer._target_ == "torch.optim.Adam" and cfg.optimizer.lr == 1e-3
    assert cfg.mlflow.tracking_uri == f"sqlite:///{PROJECT_ROOT}/mlflow.db"


def test_any_width_can_be_set_directly():
    net = build(compose("model.width=300").model, in_features=64, num_classes=10)
    assert net.dense[0].out_features == 300 and net.dense[0].in_features == 64


def test_help_lists_the_groups():
    result = run_python("train.py", "--help")
    assert result.returncode == 0, result.stderr
    for group in ("dataset", "model", "optimizer"):
        assert f"{group}: {', '.join(options(group))}" in result.stdout


def test_cfg_job_prints_the_composed_config():
    result = run_python("train.py", "--cfg", "job", "batch_size=64", "optimizer=sgd")
    assert result.returncode == 0, result.stderr
    printed = yaml.safe_load(result.stdout)
    assert printed["batch_size"] == 64 and printed["optimizer"]["_target_"] == "torch.optim.SGD"
    assert {"dataset", "model", "optimizer", "epochs", "seed", "device", "mlflow"} <= set(printed)
    assert "hydra" not in printed
