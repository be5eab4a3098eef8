"""The report's parts without a sweep: short run names, the expected best against trials (Dodge et al. 2019), the
Markdown note and the page from a hand-made Report."""
import numpy as np
import pytest

from sweeplab import ui
from sweeplab.labels import RunLabels, short_number, values_text
from sweeplab.report import expected_max, page
from sweeplab.report.model import Point, Report, Row, markdown


@pytest.mark.parametrize("value, text", [
    (16, "16"), (0.0031, "3.1e-3"), (0.001, "1e-3"), (0.031, "0.031"), (0.5, "0.5"), (0.00014936, "1.5e-4"),
    (2042, "2042"), ("cnn", "cnn"), (0.1, "0.1"), (1e-5, "1e-5"),
])
def test_numbers_in_their_shortest_readable_form(value, text):
    assert short_number(value) == text


def test_names_begin_with_what_differs():
    class Trial:
        number, params = 6, {"optimizer.lr": 0.0031, "batch_size": 16, "model.width": 256, "model": "cnn"}

    labels = RunLabels({"dataset": "digits", "model": "ffn256", "optimizer": "adam"})
    assert labels.name(16, 0.0031, Trial()) == "t6 bs16 lr3.1e-3 width256 cnn"
    assert labels.name(16, 0.0031, Trial(), seed=1042) == "t6 bs16 lr3.1e-3 width256 cnn seed1042"
    assert labels.name(128, 0.001) == "digits-ffn256-adam bs128 lr1e-3"
    grid = RunLabels(labels.choices, {"batch_size": "32"}, job=2)
    assert grid.name(32, 0.001) == "j2 bs32" and grid.tags()["sweeplab.grid_job"] == "2"
    assert values_text({"optimizer.lr": 1e-3, "batch_size": 64}) == ["bs64", "lr1e-3"]


def test_expected_best_matches_drawing_trials_at_random():
    values = np.array([0.70, 0.80, 0.85, 0.90, 0.91])
    n = np.arange(1, 6)
    exact = expected_max.expected_max(values, n)
    rng = np.random.default_rng(0)
    simulated = [rng.choice(values, (20000, k)).max(axis=1).mean() for k in n]
    assert exact == pytest.approx(simulated, abs=0.003)
    assert exact[0] == pytest.approx(values.mean()) and np.all(np.diff(exact) > 0)
    counts, mean, low, high = expected_max.curve(list(1 - values), maximize=False)  # a loss: the expected minimum
    assert list(counts) == [1, 2, 3, 4, 5] and mean[0] == pytest.approx(1 - values.mean())
    assert np.all(np.diff(mean) < 0) and np.all(low <= mean + 1e-12) and np.all(mean <= high + 1e-12)


def small_report() -> Report:
    rows = [Row("best", "t3", {"batch_size": 32, "optimizer.lr": 0.004}, 3, 0.95, 0.004, 0.94, 0.005, "#/x"),
            Row("baseline", "t0", {"batch_size": 128, "optimizer.lr": 0.001}, 3, 0.90, 0.006)]
    points = [Point("t0", {"batch_size": 128, "optimizer.lr": 0.001}, 0.9, "baseline"),
              Point("t1", {"batch_size": 512, "optimizer.lr": 0.05}, 0.6),
              Point("t3", {"batch_size": 32, "optimizer.lr": 0.004}, 0.95, "best")]
    return Report("study", "Study s", "val_accuracy", "maximize", "**Confirmed best: trial 3**, ...", rows, points,
                  curves={"t3 best": [[0.8, 0.9, 0.95]]}, importances={"optimizer.lr": 0.8, "batch_size": 0.2},
                  search_values=[0.9, 0.6, 0.95])


def test_the_note_is_a_verdict_and_a_table():
    note = markdown(small_report())
    assert note.startswith("**Confirmed best: trial 3**")
    assert "| **best** | [t3](#/x) | 32 | 4e-3 | 3 | 0.9500 ± 0.0040 | 0.9400 ± 0.0050 |" in note
    assert "| baseline | t0 | 128 | 1e-3 | 3 | 0.9000 ± 0.0060 | – |" in note


def test_the_page_draws_batch_size_in_numeric_order_on_a_log_axis():
    html = page.render(small_report())
    assert html.count("<svg") == 4 and "<script" not in html
    parameters = html[html.index("<h2>Parameters"):html.index("<h2>Validation")]
    ticks = [t for t in ("32", "128", "512") if f">{t}<" in parameters or f"\n{t}\n" in parameters]
    positions = [parameters.index(f"{t}") for t in ticks]
    assert ticks == ["32", "128", "512"] and positions == sorted(positions)


def test_the_ui_launcher_says_in_one_line_when_there_is_no_database(tmp_path, capsys):
    assert ui.main(["--backend-store-uri", f"sqlite:///{tmp_path}/mlflow.db", "--no-browser"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: no MLflow database at sqlite:///") and "--backend-store-uri" in line
    assert ui.runs_url("http://127.0.0.1:5000", "3") == \
        "http://127.0.0.1:5000/#/experiments/3/runs?workflowType=machine_learning"


def test_optuna_dashboards_python_plots_order_batch_sizes_as_numbers():
    """optuna-dashboard's setting "Use Plotly Python library" draws its plots on the server with optuna.visualization
    (plotly, in the `dashboard` extra), which takes a choice of numbers as numbers: batch sizes in numeric order."""
    import json
    from wsgiref.util import setup_testing_defaults

    import optuna
    from optuna_dashboard import wsgi

    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, direction="maximize")
    space = {"batch_size": optuna.distributions.CategoricalDistribution([16, 32, 64, 128, 256, 512]),
             "optimizer.lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    for i, size in enumerate([128, 16, 256, 32, 512, 64]):
        study.add_trial(optuna.trial.create_trial(params={"batch_size": size, "optimizer.lr": 10 ** (-1 - i / 2)},
                                                  distributions=space, value=i / 10))
    app = wsgi(storage)

    def get(path: str):
        environ = {"PATH_INFO": path}
        setup_testing_defaults(environ)
        body = json.loads(b"".join(app(environ, lambda *_: None)))
        return json.loads(body) if isinstance(body, str) else body

    assert get("/api/meta")["plotlypy_is_available"]  # the dashboard offers the setting
    figure = get(f"/api/studies/{study._study_id}/plot/contour")
    (contour,) = [d for d in figure["data"] if d["type"] == "contour"]
    assert contour["x"][1:-1] == [16, 32, 64, 128, 256, 512]  # numbers, in order (a margin on either side)
    assert figure["layout"]["xaxis"].get("type") != "category"


def test_a_fronts_verdict_says_what_each_point_buys_and_never_offers_an_infeasible_one():
    from optuna.study import StudyDirection

    from sweeplab.report.front_view import verdict
    from sweeplab.sweep.pareto import FrontPoint

    def point(trial, accuracy, seconds, baseline=False, infeasible=0, on_front=False, beats=None):
        values = {seed: [accuracy + d, seconds + d] for seed, d in ((0, 0.0), (1, 0.01))}
        costs = {0: {"peak_memory_mb": 5.0}, 1: {"peak_memory_mb": 7.0}}
        return FrontPoint(trial, {"batch_size": 2 ** (trial + 4), "optimizer.lr": 1e-3}, baseline, values, costs,
                          infeasible, on_front, beats or {})

    points = [point(1, 0.95, 2.0, on_front=True, beats={0: ["val_accuracy"]}), point(2, 0.90, 1.0, on_front=True),
              point(3, 0.99, 0.5, infeasible=1), point(0, 0.85, 2.5, baseline=True)]  # 3: best in both, infeasible
    text = verdict(points, ["val_accuracy", "train_time_s"], [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE],
                   confirmed=True)
    assert text.startswith("**Confirmed front: trials 1, 2** of 4 configurations trained again on fresh seeds")
    assert ("Trial 1 (bs32 lr1e-3) buys val_accuracy 0.9550 ± 0.0050 at train_time_s 2.0050 ± 0.0050, "
            "peak_memory_mb 6.0000; trial 2 (bs64 lr1e-3) buys val_accuracy 0.9050") in text
    assert "Beyond noise (two standard errors of the paired difference): trial 1 beats 0 in val_accuracy." in text
    assert text.endswith("The baseline, trial 0 (bs16 lr1e-3), with val_accuracy 0.8550 ± 0.0050 at train_time_s "
                         "2.5050 ± 0.0050, peak_memory_mb 6.0000, is dominated by trials 1, 2 (by the means).")
    assert "trial 3" not in text
