"""The inference entry point: a finished run's best weights against the test labels."""
import pytest

from conftest import run_python
from sweeplab.data.sources import DigitsSource
from sweeplab.predict import main


def test_prints_n_rows_against_true_labels(finished_run):
    result = run_python("-m", "sweeplab.predict", str(finished_run.space.out), "--n", "7")
    assert result.returncode == 0, result.stderr
    header, *rows, summary = result.stdout.strip().splitlines()
    assert header.split() == ["index", "predicted", "true"]
    assert len(rows) == 7
    _, test_labels = DigitsSource().load().test
    table = [row.split() for row in rows]
    assert [int(r[0]) for r in table] == list(range(7))
    assert [int(r[2]) for r in table] == test_labels[:7].tolist()
    correct = sum(r[1] == r[2] for r in table)
    assert summary == f"accuracy {correct}/7 = {correct / 7:.3f}"
    assert correct >= 4  # a trained model, not chance


@pytest.mark.parametrize("damage", ["no such folder", "no weights", "corrupt weights"])
def test_bad_run_folder_is_one_line_and_exit_2(tmp_path, finished_run, capsys, damage):
    run_dir = tmp_path / "run"
    if damage != "no such folder":
        (run_dir / ".hydra").mkdir(parents=True)
        saved = finished_run.space.out / ".hydra" / "config.yaml"
        (run_dir / ".hydra" / "config.yaml").write_bytes(saved.read_bytes())
    if damage == "corrupt weights":
        (run_dir / "best.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SystemExit) as exited:
        main([str(run_dir)])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and str(run_dir) in err
