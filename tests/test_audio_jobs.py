"""Spoken digits through `train.py` and `sweeplab.predict`: a CNN run tracked in MLflow, bad input in one line."""
import pytest

from tests.helpers import FSDD, needs_fsdd, run_python

pytestmark = needs_fsdd
SMALL = ("dataset=spoken_digits", "model=cnn", "dataset.n_mels=32", "batch_size=64")


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory, mlflow_template):
    from tests.helpers import Workspace

    space = Workspace(tmp_path_factory.mktemp("audio-run"), mlflow_template)
    result = space.train(*SMALL, "epochs=4")
    assert result.returncode == 0, result.stderr
    (run,) = space.runs()
    return space, run


@pytest.mark.slow
def test_a_cnn_learns_the_spoken_digits_and_mlflow_records_it(audio_run):
    space, run = audio_run
    assert run.info.status == "FINISHED" and run.data.tags["model"] == "cnn"
    assert run.data.params["dataset.n_mels"] == "32" and run.data.params["dataset.holdout_speaker"] == "None"
    assert run.data.metrics["test_accuracy"] > 0.5  # four epochs: far above chance (0.1)
    assert list((space.root / "data" / "fsdd" / "features").glob("*.pt"))  # the cache lives under data_dir


@pytest.mark.slow
def test_predict_shows_test_recordings_and_classifies_a_wav_file(audio_run):
    space, _ = audio_run
    table = run_python("-m", "sweeplab.predict", str(space.out), "--n", "5")
    assert table.returncode == 0, table.stderr
    header, *rows, summary = table.stdout.strip().splitlines()
    assert len(rows) == 5 and summary.startswith("accuracy ")
    wav = FSDD / "recordings" / "7_nicolas_2.wav"
    single = run_python("-m", "sweeplab.predict", str(space.out), str(wav))
    assert single.returncode == 0, single.stderr
    line = single.stdout.strip()
    assert line.startswith(f"{wav}: ") and line.split(": ")[1].split()[0] in "0123456789"
    assert 0.1 <= float(line.split("probability ")[1].rstrip(")")) <= 1.0
    broken = space.root / "broken.wav"
    broken.write_bytes(b"RIFF....WAVEfmt ")
    failed = run_python("-m", "sweeplab.predict", str(space.out), str(broken))
    assert failed.returncode == 2 and failed.stderr.startswith(f"error: {broken} is not a readable WAV file")
    assert failed.stderr.count("\n") == 1


@pytest.mark.parametrize("overrides, message", [
    (("dataset.n_fft=16000",), "error: dataset.n_fft=16000 is longer than the clip (8000 samples"),
    (("dataset.n_mels=300",), "error: dataset.n_mels=300 is more than dataset.n_fft=512 supports"),
    (("dataset.hop_length=0",), "error: dataset.hop_length must be an integer >= 1 (got 0)"),
    (("dataset.sample_rate=16000",), "error: "),
    (("dataset.holdout_speaker=alice",), "error: dataset.holdout_speaker=alice is not among the speakers"),
    (("dataset.source.offline_dirs=[]", "download=false"), "error: spoken-digit recordings not found (looked in"),
])
def test_bad_audio_input_is_one_line_and_exit_2_before_training(workspace, overrides, message):
    result = workspace.train(*SMALL, *overrides)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert "epoch 1" not in result.stdout + result.stderr
    if "sample_rate" in overrides[0]:
        assert "sampled at 8000 Hz but dataset.sample_rate=16000; set dataset.sample_rate=8000" in result.stderr
