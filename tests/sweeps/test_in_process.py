"""In-process trials (sweep/in_process.py: Hydra's basic launcher with one copy of each job's config) leave what
Hydra's own run_job leaves: the same `.hydra/` files, log file and results. The reference is the joblib launcher
with one job at a time, which runs Hydra's run_job itself."""
import pytest
import yaml

pytestmark = pytest.mark.slow


TRIALS = ("hydra.sweeper.n_trials=3", "epochs=1", "hydra/sweeper/sampler=tpe")


def _hydra_files(job) -> dict:
    """The job's `.hydra/` files, its sweep's folder as ROOT, the launcher's own settings left out (each launcher
    names its jobs its own way: job.id is `0` in-process, `train_0` with joblib)."""
    root = str(job.parent.parent)
    files = {name: yaml.safe_load((job / ".hydra" / name).read_text().replace(root, "ROOT"))
             for name in ("config.yaml", "overrides.yaml", "hydra.yaml")}
    return _without_launcher(files)


def _without_launcher(node):
    if isinstance(node, dict):
        return {k: None if k == "id" else _without_launcher(v) for k, v in node.items()
                if k not in ("launcher", "hydra/launcher")}
    if isinstance(node, list):
        return [_without_launcher(v) for v in node if "launcher" not in str(v)]
    return node


def test_in_process_jobs_leave_what_hydras_run_job_leaves(new_sweep):
    ours, hydras = new_sweep("in-process"), new_sweep("hydras-run-job")
    code, out, err = ours.run(*TRIALS)
    assert code == 0, err
    assert all(f"Trial {n}: bs" in out + err for n in range(3))  # the console's line per job (sweep/console.py)
    code, _, err = hydras.run(*TRIALS, "hydra/launcher=joblib", "hydra.launcher.n_jobs=1")
    assert code == 0, err
    ours_jobs, hydras_jobs = ours.job_dirs(), hydras.job_dirs()
    assert [j.name for j in ours_jobs] == [j.name for j in hydras_jobs] == ["0", "1", "2"]
    for mine, theirs in zip(ours_jobs, hydras_jobs):
        assert _hydra_files(mine) == _hydra_files(theirs)
        log = (mine / "train.log").read_text()
        assert "epoch 1/1" in log and "best val_accuracy" in log  # the job's own log file, its lines only
        assert "Trial" not in log  # the sweep's own lines stay out of it
    assert [t.params for t in ours.study().trials] == [t.params for t in hydras.study().trials]
    assert [t.values for t in ours.study().trials] == [t.values for t in hydras.study().trials]

