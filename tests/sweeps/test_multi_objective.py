"""Issue 21: several objectives (accuracy against time and memory), the search's Pareto front confirmed on fresh
seeds, constraints, and the inputs that cannot work together."""
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState

from optuna_dashboard._note import get_note_from_system_attrs

from sweeplab.names import CONFIRMS_ATTR, FEASIBLE_ATTR, RESULTS_FILE, ROLE_ATTR
from sweeplab.report.publish import NOTE_TAG, REPORT_FILE
from sweeplab.sweep.pareto import dominates
from tests.helpers import one_error_line
from tests.sweeps.test_report import CHROMIUM


N_SEARCH, TOP_K = 6, 2
TWO = ("objective.metrics=[val_accuracy,train_time_s]", "objective.directions=[maximize,minimize]",
       "hydra.sweeper.direction=[maximize,minimize]",  # the official plugin's key, agreeing with the objective
       f"hydra.sweeper.n_trials={N_SEARCH}", f"hydra.sweeper.confirm.top_k={TOP_K}", "hydra.sweeper.confirm.seeds=1",
       "hydra/sweeper/sampler=tpe")
# Digits trains on 1 137 images: batch 256 and 512 take 5 and 3 steps per epoch, batch 128 takes 9. A deterministic
# cost, so the constraint rules out the largest batch sizes on every machine.
FEW_STEPS = 'objective.constraints=["steps_per_epoch>=6"]'
SPACE = "batch_size=choice(64,128,256,512)"


@pytest.fixture(scope="module")
def two(new_sweep):
    space = new_sweep("two-objectives")
    code, out, err = space.run(*TWO)
    assert code == 0, err[-3000:]
    space.stdout = out
    return space


@pytest.fixture(scope="module")
def three(new_sweep):
    """Three objectives and a constraint, run for 3 trials and then extended to 5 (the study's total)."""
    space = new_sweep("three-objectives")
    args = ("objective=accuracy_vs_time_memory", FEW_STEPS, SPACE, "hydra/sweeper/sampler=random",
            "hydra.sweeper.study_name=three")
    code, _, err = space.run(*args, "hydra.sweeper.n_trials=3")
    assert code == 0, err[-3000:]
    space.first = space.study().trials
    code, out, err = space.run(*args, "hydra.sweeper.n_trials=5")
    assert code == 0, err[-3000:]
    space.stdout, space.args = out, args
    return space


def results(space) -> dict:
    return yaml.safe_load((space.dir / RESULTS_FILE).read_text())


def assert_front_is_non_dominated(study, solutions, n_search):
    search = [t for t in study.trials if t.state == TrialState.COMPLETE and t.user_attrs.get(FEASIBLE_ATTR, True)]
    assert len(study.trials) == n_search
    assert solutions
    for solution in solutions:
        assert study.trials[solution["number"]].values == solution["values"]
        assert not any(dominates(t.values, solution["values"], study.directions) for t in search)
    front = {s["number"] for s in solutions}  # and every trial left out is dominated by one on the front
    for trial in search:
        if trial.number not in front:
            assert any(dominates(study.trials[n].values, trial.values, study.directions) for n in front)


@pytest.mark.slow
def test_two_objectives_name_the_study_and_its_front(two):
    study = two.study()
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert study.metric_names == ["val_accuracy", "train_time_s"]
    assert all(len(t.values) == 2 for t in study.trials if t.state == TrialState.COMPLETE)
    assert_front_is_non_dominated(study, results(two)["solutions"], N_SEARCH)
    for solution in results(two)["solutions"]:
        assert set(solution) == {"number", "params", "values"}  # the official plugin's entries, and the trial


@pytest.mark.slow
def test_confirmation_trains_front_points_and_the_baseline_again(two):
    study = two.study()
    front = {s["number"] for s in results(two)["solutions"]}
    repeats = two.confirm_study().trials
    assert all(t.user_attrs[ROLE_ATTR] == "confirm" and len(t.values) == 2 for t in repeats)
    sources = Counter(t.user_attrs[CONFIRMS_ATTR] for t in repeats)
    assert all(count == 1 for count in sources.values())  # confirm.seeds=1
    assert 0 in sources  # the baseline
    assert len(sources.keys() - {0}) == min(TOP_K, len(front)) and sources.keys() - {0} <= front
    confirmed = results(two)["confirmed"]
    assert {p["trial"] for p in confirmed} == set(sources)
    for point in confirmed:
        assert point["seeds"] == 2 and set(point["mean"]) == set(point["se"]) == {"val_accuracy", "train_time_s"}
        assert point["se"]["val_accuracy"] is not None  # two seeds: a standard error
    on_front = [p for p in confirmed if p["on_front"]]
    assert results(two)["confirmed_front"] == on_front
    means = {p["trial"]: [p["mean"]["val_accuracy"], p["mean"]["train_time_s"]] for p in confirmed}
    for point in on_front:
        assert not any(dominates(means[o], means[point["trial"]], study.directions) for o in means)
    assert "Confirmed front" in two.stdout and "val_accuracy ± SE" in two.stdout


@pytest.mark.slow
def test_the_parent_run_shows_the_front_and_children_their_costs(two):
    (parent,) = two.parents()
    client = two.client()
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert "plots/pareto_front.png" in artifacts
    assert "confirmed_front.json" in {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert parent.data.metrics["pareto_front_size"] == len(results(two)["solutions"])
    assert parent.data.params["objective"] == "val_accuracy,train_time_s"
    for child in two.children(parent.info.run_id):
        metrics = child.data.metrics
        assert metrics["train_time_s"] > 0 and metrics["samples_per_s"] > 0 and metrics["peak_memory_mb"] >= 0
        assert metrics["median_epoch_time_s"] > 0 and metrics["steps_per_epoch"] >= 1


@pytest.mark.slow
def test_report_html_and_the_notes_give_the_confirmed_front(two):
    (parent,) = two.parents()
    page = (two.dir / REPORT_FILE).read_text()
    assert REPORT_FILE in {a.path for a in two.client().list_artifacts(parent.info.run_id)}
    assert 'id="verdict"' in page and "<script" not in page and not re.search(r"""(src|href)=["']https?:""", page)
    front_figure = page[page.index("<h2>The front"):].split("</figure>")[0]
    assert "<svg" in front_figure and "Pareto front" in front_figure and "batch_size=" in front_figure
    assert "Validation curves" in page and "Parameter importances for train_time_s" in page
    confirmed = results(two)["confirmed"]
    for point in confirmed:  # one row per confirmed configuration, marked on the front or not, with its means
        kind, cells = re.search(rf'<tr class="(front|other)" id="t{point["trial"]}">(.*?)</tr>', page).groups()
        assert (kind == "front") == point["on_front"]
        assert f'{point["mean"]["val_accuracy"]:.4f} ± ' in cells
        assert f'{point["mean"]["train_time_s"]:.4f} ± ' in cells
    note = parent.data.tags[NOTE_TAG]
    named = re.match(r"\*\*Confirmed front: trials? ([\d, ]+)\*\* of (\d+) configurations", note)
    assert {int(n) for n in named.group(1).split(", ")} == {p["trial"] for p in confirmed if p["on_front"]}
    assert int(named.group(2)) == len(confirmed) and " buys val_accuracy " in note and "The baseline, trial 0 (" in note
    assert f"| **front" in note and "| seeds | val_accuracy ± SE | train_time_s ± SE | peak_memory_mb |" in note
    study = two.study()
    dashboard = get_note_from_system_attrs(study._storage.get_study_system_attrs(study._study_id), None)["body"]
    assert dashboard.split("\n")[0] == note.split("\n")[0]
    assert f"Report:   {two.dir / REPORT_FILE}" in two.stdout


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make system-packages)")
def test_in_a_browser_the_front_report_shows(two):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox",
                                                                             "--disable-gpu", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto((two.dir / REPORT_FILE).as_uri())
        expect(page.locator("#verdict")).to_contain_text("Confirmed front: trial")
        figures = page.locator("svg")
        assert figures.count() >= 3 and all(  # the front, the curves, importances
            (figures.nth(i).bounding_box() or {}).get("height", 0) > 100 for i in range(figures.count()))
        browser.close()
    assert not errors, errors


@pytest.mark.slow
def test_three_objectives_with_a_constraint_resume_to_the_new_total(three):
    study = three.study()
    assert len(three.first) == 3 and len(study.trials) == 5
    assert [t.params for t in study.trials[:3]] == [t.params for t in three.first]  # extended, not restarted
    assert study.metric_names == ["val_accuracy", "train_time_s", "peak_memory_mb"]
    solutions = results(three)["solutions"]
    assert_front_is_non_dominated(study, solutions, 5)
    for trial in study.trials:
        large = trial.params["batch_size"] >= 256
        assert trial.user_attrs[FEASIBLE_ATTR] is not large
        assert (trial.constraints["steps_per_epoch>=6"] > 0) is large
    assert all(s["params"]["batch_size"] <= 128 for s in solutions)  # no answer breaks the constraint
    page = (three.dir / REPORT_FILE).read_text()
    front = re.findall(r'<tr class="front" id="t(\d+)">', page)
    assert front and all(study.trials[int(n)].params["batch_size"] <= 128 for n in front)


@pytest.mark.slow
def test_resuming_with_other_objectives_is_one_line(three, capfd):
    from tests.sweeps.test_sweep_bad_input import sweep_in_process

    code, _, err = sweep_in_process(three, capfd, *three.args[1:], "hydra.sweeper.n_trials=6")  # one objective
    assert code == 2
    assert "study three answers another question (objective." in one_error_line(err)
    assert len(three.study().trials) == 5


@pytest.mark.slow
def test_a_constraint_rules_out_the_largest_batch_sizes(new_sweep):
    space = new_sweep("constrained")
    code, out, err = space.run(FEW_STEPS, SPACE, "hydra/sweeper/sampler=random", "hydra.sweeper.n_trials=6",
                               "hydra.sweeper.confirm.top_k=1", "hydra.sweeper.confirm.seeds=1")
    assert code == 0, err[-3000:]
    study = space.study()
    infeasible = [t for t in study.trials if t.user_attrs[FEASIBLE_ATTR] is False]
    assert infeasible and all(t.params["batch_size"] >= 256 for t in infeasible)
    answer = results(space)
    assert answer["best_params"]["batch_size"] <= 128 and answer["search_best"]["best_params"]["batch_size"] <= 128
    assert study.best_trial.params["batch_size"] <= 128  # Optuna's own answer leaves them out too
    (parent,) = space.parents()
    assert parent.data.params["constraints"] == "steps_per_epoch>=6"


@pytest.mark.parametrize("overrides, words", [
    (("objective=accuracy_vs_time", "hydra.sweeper.direction=[maximize]"),
     ("1 direction(s)", "2 objective(s)", "val_accuracy, train_time_s")),
    (("hydra.sweeper.direction=[maximize,minimize]",), ("2 direction(s)", "1 objective(s)", "objective.metrics")),
    (("objective=accuracy_vs_time", "hydra.sweeper.direction=[maximize,maximize]"),
     ("says maximize for train_time_s", "objective.directions says minimize")),
    (("objective=accuracy_vs_time", "hydra/sweeper/pruner=median"), ("MedianPruner cannot prune", "several")),
    (("objective=accuracy_vs_time", "hydra.sweeper.population=4"), ("train_time_s", "population=4", "share")),
    (('objective.constraints=["peak_memory_mb<2000"]',), ("is not '<metric><=<number>'",)),
    (('objective.constraints=["gpu_hours<=2"]',), ("gpu_hours is not a metric",)),
    (("objective.metrics=[val_accuracy,train_time_s]", "objective.directions=[maximize]"),
     ("1 entries for 2 objective.metrics",)),
    (("objective.metrics=[val_accuracy,wall_clock]", "objective.directions=[maximize,minimize]"),
     ("wall_clock is not a metric",)),
])
def test_bad_objectives_are_one_line_before_any_work(new_sweep, capfd, overrides, words):
    from tests.sweeps.test_sweep_bad_input import assert_nothing_ran, assert_one_line, sweep_in_process

    space = new_sweep("bad-objective")
    code, _, err = sweep_in_process(space, capfd, *overrides)
    assert_one_line(code, err, *words)
    assert_nothing_ran(space)
