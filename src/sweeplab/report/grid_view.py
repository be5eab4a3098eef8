"""A plain grid sweep's parent run and its children as a Report: the best jobs and the baseline (the job with the
config's own values, when the grid holds it), one seed each; no search-only parts (importances, expected best)."""
import math

from sweeplab.report.model import Point, Report, Row, run_link

RUNNER_UPS = 2
JOB_TAG = "sweeplab.grid_job"


def grid_report(parent, children: list, swept: list[str], defaults: dict, objective: str, direction: str,
                client=None) -> Report:
    """``children``: MLflow runs; ``swept``: the keys the grid varies; ``defaults``: their values without a sweep."""
    key = f"best_{objective}"
    maximize = direction == "maximize"
    done = sorted((c for c in children if key in c.data.metrics),
                  key=lambda c: (-c.data.metrics[key] if maximize else c.data.metrics[key], _job(c)))
    experiment = parent.info.experiment_id

    def row(role, run):
        metrics = run.data.metrics
        return Row(role, f"j{_job(run)}", _values(run, swept), 1, metrics[key], None, metrics.get("test_accuracy"),
                   None, run_link(experiment, run.info.run_id))

    rows = [row("best" if i == 0 else "runner-up", c) for i, c in enumerate(done[:1 + RUNNER_UPS])]
    baseline = next((c for c in done if _values(c, swept) == _numbers(defaults)), None)
    if baseline is not None and baseline not in done[:1 + RUNNER_UPS]:
        rows.append(row("baseline", baseline))
    roles = {r.label: r.role for r in rows}
    if baseline is not None:
        roles.setdefault(f"j{_job(baseline)}", "baseline")
    points = [Point(f"j{_job(c)}", _values(c, swept), c.data.metrics[key], roles.get(f"j{_job(c)}")) for c in done]
    curves = {f"{r.label} {r.role}": [_history(client, c, objective)] for r in rows
              for c in done if f"j{_job(c)}" == r.label} if client else {}
    return Report(kind="grid", title=f"Grid {parent.info.run_name}", objective=objective, direction=direction,
                  verdict=_verdict(rows, objective, len(children), len(done)), rows=rows, points=points,
                  facts=f"{len(children)} jobs, {len(done)} finished; one seed each.", curves=curves)


def _verdict(rows: list[Row], objective: str, jobs: int, finished: int) -> str:
    if not rows:
        return f"**No job of the grid finished** ({jobs} jobs)."
    best = rows[0]
    test = f", test accuracy {best.test_mean:.4f}" if best.test_mean is not None else ""
    text = f"**Best of the grid: job {best.label[1:]} ({best.values})**, {objective} {best.mean:.4f}{test}"
    baseline = next((r for r in rows if r.role == "baseline"), None)
    if baseline:
        text += (f"; the baseline (job {baseline.label[1:]}, {baseline.values}) {baseline.mean:.4f}: "
                 f"{best.mean - baseline.mean:+.4f} on one seed each, untested against noise "
                 f"(an Optuna study's confirmation repeats the best on fresh seeds)")
    return text + "."


def _job(run) -> int:
    return int(run.data.tags.get(JOB_TAG, -1))


def _values(run, swept: list[str]) -> dict:
    return _numbers({k: run.data.params.get(k, run.data.tags.get(k)) for k in swept
                     if k in run.data.params or k in run.data.tags})


def _numbers(values: dict) -> dict:
    """Params come back from MLflow as text: numbers as numbers again (for the table and the log axes)."""
    converted = {}
    for name, value in values.items():
        try:
            number = float(value)
            converted[name] = int(number) if number.is_integer() and "." not in str(value) else number
        except (TypeError, ValueError):
            converted[name] = value
        if isinstance(converted[name], float) and not math.isfinite(converted[name]):
            converted[name] = value
    return converted


def _history(client, run, objective: str) -> list[float]:
    return [m.value for m in sorted(client.get_metric_history(run.info.run_id, objective), key=lambda m: m.step)]
