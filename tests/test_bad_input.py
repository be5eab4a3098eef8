"""Issue 2's "Bad input": each fails before training with one line naming the key; no traceback, no output folder,
no MLflow run left RUNNING. Each case runs `train.py` as a subprocess on the fast digits dataset."""
import pytest
import torch

from tests.helpers import mnist_overrides, write_mnist

# case id -> (overrides, text the last line must contain); {tmp} is the test's folder, {file} a regular file there.
CASES = {
    "batch_size=0": (["batch_size=0"], "batch_size"),
    "batch_size non-integer": (["batch_size=1.5"], "batch_size"),
    "epochs=0": (["epochs=0"], "epochs"),
    "lr=0": (["optimizer.lr=0"], "optimizer.lr"),
    "lr not a number": (["optimizer.lr=fast"], "optimizer.lr"),
    "width=0": (["model.width=0"], "model.width"),
    "val_size >= train size": (["val_size=1437"], "val_size"),
    "val_size=0": (["val_size=0"], "val_size"),
    "unknown device": (["device=tpu"], "device"),
    "cuda without CUDA": (["device=cuda"], "device=cuda"),
    "corrupt dataset file": (["{mnist}", "data_dir={tmp}/data"], "{tmp}/data/MNIST/raw"),
    "truncated dataset file": (["{mnist}", "data_dir={tmp}/data"], "{tmp}/data/MNIST/raw"),
    "no dataset offline": (["dataset=mnist", "download=false", "data_dir={tmp}/data"], "{tmp}/data/MNIST/raw"),
    "unwritable data dir": (["{mnist}", "data_dir={file}/sub"], "data_dir"),
    "unwritable output dir": (["hydra.run.dir={file}/sub/out"], "hydra.run.dir"),
    "unreachable tracking URI": (["mlflow.tracking_uri=http://127.0.0.1:9"], "http://127.0.0.1:9"),
    "dataset without val_size": (["~dataset.val_size"], "dataset config 'digits' sets no val_size"),  # issue 19
    "a number for a pair": (["+optimizer.betas=0.9"], "takes 2 values there, like its default (0.9, 0.999)"),
}


def prepare(case: str, tmp) -> None:
    (tmp / "file").write_text("a regular file: nothing can be created under it, not even by root")
    if case in ("corrupt dataset file", "truncated dataset file"):
        raw = tmp / "data" / "MNIST" / "raw"
        write_mnist(raw, gz=False)
        images = raw / "train-images-idx3-ubyte"
        data = images.read_bytes()
        images.write_bytes(b"\xff" * 16 + data[16:] if case.startswith("corrupt") else data[: len(data) // 3])


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_in_one_line(case, workspace, synthetic_mnist):
    if case == "cuda without CUDA" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    overrides, needle = CASES[case]
    fill = {"tmp": workspace.root, "file": workspace.root / "file", "mnist": " ".join(mnist_overrides(synthetic_mnist))}
    overrides = [part for o in overrides for part in o.format(**fill).split(" ")]
    prepare(case, workspace.root)

    result = workspace.train(*overrides)

    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and needle.format(**fill) in last, result.stderr
    assert not workspace.out.exists()
    assert not any(run.info.status == "RUNNING" for run in workspace.runs())


def test_unknown_group_option_is_one_line_with_the_choices(workspace):
    result = workspace.train("dataset=imagenet")
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: dataset=imagenet does not exist: choose one of digits, fashion_mnist, "
                                     "image_folder, mnist, spoken_digits")
    assert not workspace.out.exists() and workspace.runs() == []


def test_two_hydra_commands_are_one_line(workspace):
    result = workspace.train("-m", "--cfg", "hydra")
    assert result.returncode == 2
    assert result.stderr.startswith("error: use only one of --run, --multirun") and len(result.stderr.splitlines()) == 1


def test_sweeper_keys_without_multirun_are_one_warning_line(workspace):
    """Issue 19: `hydra.sweeper.*` on a single job (no -m) is read by nothing: said in one line (the job's own error
    follows here, so nothing trains)."""
    result = workspace.train("hydra/sweeper=optuna", "hydra.sweeper.n_trials=6", "epochs=0")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 2, result.stderr
    assert lines[0].startswith("warning: hydra.sweeper.n_trials=6 is read only by a sweep") and "-m" in lines[0]
