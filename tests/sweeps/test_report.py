"""Issue 20, the answer at a glance: a study's verdict and table in the parent run's description and the
optuna-dashboard note, report.html beside the study and on the parent run, run names that begin with what differs,
one short console line per job, and the logged model with its winning values — all from one small sweep with a
confirmation (shared by these tests), and a grid's page from one small grid. The slow test opens them in Chromium."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from optuna_dashboard._note import get_note_from_system_attrs

from sweeplab.labels import short_number
from sweeplab.names import PARENT_TAG, ROLE_ATTR, SEED_ATTR
from sweeplab.report.publish import NOTE_TAG, REPORT_FILE
from tests.helpers import PROJECT_ROOT, clean_env

STUDY_OVERRIDES = ("hydra.sweeper.n_trials=4", "hydra.sweeper.confirm.top_k=1", "hydra.sweeper.confirm.seeds=1")
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def reported(new_sweep):
    space = new_sweep("reported")
    code, out, err = space.run(*STUDY_OVERRIDES)
    assert code == 0, err[-3000:]
    space.stdout, space.stderr = out, err
    return space


@pytest.fixture(scope="module")
def grid(new_sweep):
    space = new_sweep("grid-report")
    code, out, err = space.run("batch_size=32,128", optuna_sweeper=False)
    assert code == 0, err[-3000:]
    space.stdout = out
    return space


def test_the_parent_run_description_gives_the_verdict_and_the_table(reported):
    study = reported.study()
    (parent,) = reported.parents()
    note = parent.data.tags[NOTE_TAG]
    best = json.loads(Path(reported.client().download_artifacts(parent.info.run_id, "confirmation.json"))
                      .read_text())
    rows = [dict(zip(best["columns"], row)) for row in best["data"]]
    (winner,) = [r for r in rows if r["role"] == "best"]
    name = f"bs{winner['batch_size']} lr{short_number(winner['optimizer.lr'])}"
    if winner["trial"] == 0:
        assert f"**The baseline, trial 0 ({name}), is the confirmed best**" in note
    else:
        assert f"**Confirmed best: trial {winner['trial']} ({name})**" in note and "Gain **" in note
    assert f"{winner['mean']:.4f}" in note and "| seeds | val_accuracy | test accuracy |" in note
    children = reported.child_by_trial(parent.info.run_id)
    assert f"(#/experiments/{parent.info.experiment_id}/runs/{children[winner['trial']].info.run_id})" in note
    assert "| baseline |" in note or winner["trial"] == 0
    attrs = study._storage.get_study_system_attrs(study._study_id)
    dashboard = get_note_from_system_attrs(attrs, None)["body"]  # optuna-dashboard's study note
    assert note.split("\n")[0] == dashboard.split("\n")[0]  # the same verdict, first


def test_report_html_is_one_self_contained_page_with_the_plots(reported):
    (parent,) = reported.parents()
    page = (reported.dir / REPORT_FILE).read_text()
    assert REPORT_FILE in {f.path for f in reported.client().list_artifacts(parent.info.run_id)}
    assert 'id="verdict"' in page and 'id="results"' in page
    assert page.count("<svg") == 4  # parameters, curves, importances, expected best against trials
    assert "<script" not in page and not re.search(r"""(src|href)=["']https?:""", page)  # nothing to fetch
    assert len(page) < 600_000
    assert "batch_size" in page and "number of search trials" in page
    assert f"Report:   {reported.dir / REPORT_FILE}" in reported.stdout


def test_run_names_begin_with_what_differs(reported):
    study = reported.study()
    (parent,) = reported.parents()
    for number, run in reported.child_by_trial(parent.info.run_id).items():
        trial = study.trials[number]
        expected = f"t{number} bs{trial.params['batch_size']} lr{short_number(trial.params['optimizer.lr'])}"
        if trial.user_attrs.get(ROLE_ATTR) == "confirm":
            expected += f" seed{trial.user_attrs[SEED_ATTR]}"
        assert run.info.run_name == expected
        assert run.data.params["epochs"] == "2"  # fixed values: params only


def test_the_console_has_one_short_line_per_job(reported):
    out = reported.stdout + reported.stderr
    launches = [line for line in out.splitlines() if re.search(r"\] Trial \d+: ", line)]
    confirming = [line for line in out.splitlines() if re.search(r"\] Confirmation \d+: .* seed\d+$", line)]
    assert len(launches) == len(reported.study().trials)
    assert len(confirming) == len(reported.confirm_study().trials) > 0
    assert any(line.endswith("] Trial 0: bs128 lr1e-3") for line in launches)
    assert all(len(line) < 120 for line in launches)
    assert "SWEEPLAB_TRIAL" not in out and "Launching 1 jobs" not in out


def test_the_logged_model_carries_the_winning_values_scores_and_dataset(reported):
    client = reported.client()
    (parent,) = reported.parents()
    (model,) = [m for m in client.search_logged_models([parent.info.experiment_id])
                if m.source_run_id == parent.info.run_id]
    winner = reported.study().trials[int(parent.data.tags["confirmed_trial"])]
    assert model.params == {k: str(v) for k, v in winner.params.items()}
    metrics = {m.key: m for m in model.metrics}
    assert metrics["val_accuracy_mean"].value == pytest.approx(parent.data.metrics["confirmed_mean"])
    assert metrics["val_accuracy_mean"].dataset_name == "digits"
    assert [d.dataset.name for d in parent.inputs.dataset_inputs] == ["digits"]


def test_a_grid_gets_the_same_page_without_the_search_parts(grid):
    (parent,) = [r for r in grid.runs() if r.data.tags.get("sweeplab.kind") == "grid"]
    children = [r for r in grid.runs() if r.data.tags.get(PARENT_TAG) == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == ["j0 bs32", "j1 bs128"]
    note = parent.data.tags[NOTE_TAG]
    assert "**Best of the grid: job " in note
    assert "[j0](#/experiments/" in note and "[j1](#/experiments/" in note  # both rows, linked to their runs
    text = (grid.dir / REPORT_FILE).read_text()
    assert text.count("<svg") == 2 and "expected best" not in text  # parameters and curves only
    assert [d.dataset.name for d in parent.inputs.dataset_inputs] == ["digits"]
    table = json.loads(Path(grid.client().download_artifacts(parent.info.run_id, "grid.json")).read_text())
    assert {row[table["columns"].index("dataset")] for row in table["data"]} == {"digits"}  # a choice: a tag
    assert "Job 0: bs32" in grid.stdout and "Job 1: bs128" in grid.stdout


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make system-packages)")
def test_in_a_browser_the_verdict_and_plots_show(reported, tmp_path):
    """`python -m sweeplab.ui` serves the sweep's database; headless Chromium opens the runs table it names, the
    parent run's page (its description) and report.html, from MLflow and from disk."""
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("SWEEPLAB_SCREENSHOTS", tmp_path))
    (parent,) = reported.parents()
    ui = subprocess.Popen([sys.executable, "-m", "sweeplab.ui", "--no-browser", "--port", "5391",
                           "--backend-store-uri", reported.uri], cwd=PROJECT_ROOT, env=clean_env(),
                          stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = next(line for line in ui.stdout if line.startswith("MLflow: "))  # after the server's own lines
        runs_url = re.search(r"http://\S+", line).group(0)
        assert runs_url.endswith(f"/#/experiments/{parent.info.experiment_id}/runs?workflowType=machine_learning")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors, missing = [], []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
            page.set_default_timeout(120_000)
            expect.set_options(timeout=120_000)  # this machine is slow, and shared

            page.goto(runs_url)
            expect(page.get_by_text(parent.info.run_name).first).to_be_visible()  # the runs table, not GenAI's
            page.screenshot(path=shots / "mlflow-runs.png")

            # Without the launcher's address: one click on the sidebar's "Model training" switch, which the browser
            # remembers, and a plain click on the experiment opens its runs table too.
            fresh = browser.new_page(viewport={"width": 1400, "height": 900})
            fresh.goto(runs_url.split("#")[0] + "#/experiments")
            fresh.get_by_role("button", name="Model training").click()
            fresh.get_by_role("link", name="sweeplab", exact=True).first.click()
            expect(fresh.get_by_text(parent.info.run_name).first).to_be_visible()
            fresh.close()

            page.goto(runs_url.replace("/runs?", f"/runs/{parent.info.run_id}?"))
            verdict = page.get_by_text("Confirmed best").first
            expect(verdict).to_be_visible()
            verdict.scroll_into_view_if_needed()
            page.get_by_text("Show more").first.click()  # the note's table
            expect(page.get_by_role("cell", name="baseline").first).to_be_visible()
            page.screenshot(path=shots / "mlflow-parent-run.png")

            page.goto(runs_url.replace("/runs?", f"/runs/{parent.info.run_id}/artifacts/{REPORT_FILE}?"))
            frame = page.frame_locator("iframe").first
            expect(frame.locator("#verdict")).to_be_visible()
            expect(frame.locator("svg").first).to_be_visible()
            page.screenshot(path=shots / "mlflow-report-artifact.png")

            page.goto((reported.dir / REPORT_FILE).as_uri())
            expect(page.locator("#verdict")).to_be_visible()
            assert page.locator("svg").count() == 4 and all(
                (page.locator("svg").nth(i).bounding_box() or {}).get("height", 0) > 100 for i in range(4))
            page.screenshot(path=shots / "report.png", full_page=True)
            browser.close()
        own = [e for e in errors if not e.startswith("Failed to load resource")]
        assert not own, own
        assert all("/ajax-api/" in url or "/static-files/" in url for url in missing), missing
    finally:
        os.killpg(ui.pid, 15)
        ui.wait(timeout=30)
