"""Where a report goes: report.html beside the sweep's other files, and on the parent run (its description and an
artifact), and the same Markdown as the optuna-dashboard study note."""
import logging
from pathlib import Path

from sweeplab.report import page
from sweeplab.report.model import Report, markdown

log = logging.getLogger(__name__)
NOTE_TAG = "mlflow.note.content"  # MLflow's run description (Markdown)
REPORT_FILE = "report.html"


def write(report: Report | str, folder: Path) -> Path:
    """report.html in ``folder``: the Report rendered, or a page already rendered."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / REPORT_FILE
    path.write_text(report if isinstance(report, str) else page.render(report), encoding="utf-8")
    return path


def to_run(client, run_id: str, note: str, path: Path) -> None:
    """The verdict (Markdown) as the run's description, report.html as its artifact (MLflow shows it inline)."""
    client.set_tag(run_id, NOTE_TAG, note)
    client.log_artifact(run_id, str(path))


def to_dashboard(study, note: str) -> None:
    """The same text as optuna-dashboard's study note; skipped quietly without optuna-dashboard (the `dashboard`
    extra)."""
    try:
        from optuna_dashboard import save_note
    except ImportError:
        return
    try:
        save_note(study, note)
    except Exception as error:  # a note is a courtesy: the sweep's answer is already stored
        log.warning("could not write the optuna-dashboard note: %s", error)


def study(optuna_study, folder: Path, answer, direction: str, client=None,
          run_id: str | None = None) -> Path | None:
    """A study's report: report.html in its folder, the note on its parent run and in optuna-dashboard. A report
    that cannot be drawn is a warning: the sweep's answer is in optimization_results.yaml regardless."""
    from sweeplab.report.study_view import study_report
    from sweeplab.sweep.report import objective_name

    try:
        experiment = client.get_run(run_id).info.experiment_id if client is not None and run_id else None
        report = study_report(optuna_study, answer, direction, objective_name(optuna_study), client,
                              experiment)
        path = write(report, folder)
        if client is not None and run_id:
            to_run(client, run_id, markdown(report), path)
        to_dashboard(optuna_study, markdown(report, report_link=None))
        return path
    except Exception as error:
        log.warning("could not write the study's report: %s", error)
        return None


def front(optuna_study, folder: Path, metrics: list[str], table: list, client=None,
          run_id: str | None = None) -> Path | None:
    """A study of several objectives: its front's report.html, note on the parent run and optuna-dashboard note
    (``table``: sweeplab.sweep.pareto.confirmed_front's). A warning when it cannot be drawn, as for one objective."""
    from sweeplab.report import front_view

    try:
        experiment = client.get_run(run_id).info.experiment_id if client is not None and run_id else None
        view = front_view.front_view(optuna_study, metrics, table, client, experiment)
        path = write(front_view.render(view), folder)
        if client is not None and run_id:
            to_run(client, run_id, front_view.markdown(view), path)
        to_dashboard(optuna_study, front_view.markdown(view, report_link=None))
        return path
    except Exception as error:
        log.warning("could not write the study's report: %s", error)
        return None
