"""Installing sweeplab leaves other Hydra apps alone: an app that knows nothing of sweeplab, run with
`hydra/sweeper=optuna` in sweeplab's environment, gets the official plugin exactly (its own search space, official
defaults, in-memory study, Hydra's default multirun layout, no MLflow)."""
import subprocess
import sys

import pytest
import yaml

SPHERE = '''
import hydra


@hydra.main(config_path="conf", config_name="config")
def sphere(cfg) -> float:
    return cfg.x ** 2 + cfg.y ** 2


if __name__ == "__main__":
    sphere()
'''

CONFIG = '''
defaults:
  - override hydra/sweeper: optuna
  - _self_

hydra:
  sweeper:
    n_trials: 4
    sampler:
      seed: 123
    params:
      x: range(-5.5, 5.5, step=0.5)
      y: choice(-5, 0, 5)

x: 1
y: 1
'''


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sphere-app")
    (folder / "conf").mkdir()
    (folder / "conf" / "config.yaml").write_text(CONFIG)
    (folder / "sphere.py").write_text(SPHERE)
    return folder


def run(app, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(app)}  # nothing of the test's own environment (MLflow, sweeplab)
    return subprocess.run([sys.executable, "sphere.py", *args], cwd=app, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_sweeper_config_is_the_official_one(app):
    result = run(app, "--cfg", "hydra", "-p", "hydra.sweeper")
    assert result.returncode == 0, result.stderr
    sweeper = yaml.safe_load(result.stdout)
    assert sweeper["_target_"] == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper["direction"] == "minimize"
    assert sweeper["storage"] is None and sweeper["study_name"] is None and sweeper["n_jobs"] == 2
    assert sweeper["params"] == {"x": "range(-5.5, 5.5, step=0.5)", "y": "choice(-5, 0, 5)"}
    assert sweeper["sampler"]["multivariate"] is False and sweeper["sampler"]["constant_liar"] is False
    assert "pruner" not in sweeper


def test_a_sweep_runs_as_with_the_official_plugin_alone(app):
    result = run(app, "-m")
    assert result.returncode == 0, result.stderr
    (results_file,) = app.glob("multirun/*/*/optimization_results.yaml")  # Hydra's <date>/<time> layout
    results = yaml.safe_load(results_file.read_text())
    assert results["name"] == "optuna"
    assert set(results["best_params"]) == {"x", "y"}
    assert results["best_value"] == results["best_params"]["x"] ** 2 + results["best_params"]["y"] ** 2
    jobs = sorted(p.name for p in results_file.parent.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert jobs == ["0", "1", "2", "3"]
    assert not list(app.rglob("mlflow.db")) and not list(app.rglob("mlruns")) and not list(app.rglob("*.journal"))
