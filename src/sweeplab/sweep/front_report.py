"""What a sweep of several objectives leaves behind: optimization_results.yaml in the official plugin's format
(`solutions`: the search's Pareto front), the confirmed front beside it, a figure of the front, the parent run's
share, report.html (its note on the parent run and in optuna-dashboard), and a short table on the console."""
import logging
import time
from pathlib import Path

import optuna
from omegaconf import OmegaConf

from sweeplab.names import RESULTS_FILE
from sweeplab.report import publish
from sweeplab.sweep import parent_run, pareto
from sweeplab.sweep.study import confirm_study_of, counts, search_trials

log = logging.getLogger(__name__)
FRONT_TABLE = "confirmed_front.json"
FRONT_FIGURE = "pareto_front.png"


def finish(study: optuna.Study, plan, parent_id: str | None, status: str, study_seed: int, began: float,
           tracking_hint: str | None) -> None:
    """The end of a sweep of several objectives (``plan``: its SweepPlan): the search's front and the confirmed front
    in the results file, the parent run (then ended with ``status``) and the console."""
    metrics = list(plan.objectives.metrics)
    table = pareto.confirmed_front(study, study_seed, metrics)
    results = write_results(study, plan.sweep_dir, metrics, table)
    page = publish.front(study, plan.sweep_dir, metrics, table, plan.client, parent_id)
    if parent_id:
        figure = write_figure(study, metrics, table, plan.sweep_dir / "plots")
        plan.client.log_artifact(parent_id, str(figure), "plots")
        log_front(plan.client, parent_id, study, metrics, table)
        parent_run.finish(plan.client, parent_id, study, results, status)
    print(summary(study, metrics, table, time.monotonic() - began, results, tracking_hint, plan.storage_hint, page),
          flush=True)


def write_results(study: optuna.Study, sweep_dir: Path, metrics: list[str], table: list) -> Path:
    front = pareto.search_front(study)
    results = {
        "name": "optuna",
        "study_name": study.study_name,
        "objectives": [{"metric": m, "direction": d.name.lower()} for m, d in zip(metrics, study.directions)],
        # The official plugin's key for several objectives: the non-dominated trials' params and values.
        "solutions": [{"number": t.number, "params": t.params, "values": list(t.values)} for t in front],
        "trials": counts(study, search_trials(study)),
    }
    if table:
        results["confirmed_front"] = [_point(p, metrics) for p in table if p.on_front]
        results["confirmed"] = [_point(p, metrics) for p in table]
    path = sweep_dir / RESULTS_FILE
    OmegaConf.save(OmegaConf.create(results), path)
    return path


def _point(point, metrics: list[str]) -> dict:
    return {
        "trial": point.trial, "params": point.params, "baseline": point.baseline, "seeds": len(point.values),
        "on_front": point.on_front, "feasible": not point.infeasible_seeds,
        "mean": {m: point.mean(i) for i, m in enumerate(metrics)},
        "se": {m: _finite(point.se(i)) for i, m in enumerate(metrics)},
        **{f"{c}_mean": point.cost_mean(c) for c in pareto.SHOWN_COSTS if c not in metrics},
        "beats_beyond_noise": {int(k): v for k, v in point.beats.items()},
    }


def log_front(client, run_id: str, study: optuna.Study, metrics: list[str], table: list) -> None:
    """The front's size and the confirmed front as a table in the parent run."""
    front = pareto.search_front(study)
    client.log_metric(run_id, "pareto_front_size", len(front))
    if table:
        client.log_metric(run_id, "confirmed_front_size", sum(p.on_front for p in table))
        rows = [_point(p, metrics) for p in table]
        data = {"trial": [r["trial"] for r in rows], "baseline": [r["baseline"] for r in rows],
                "on_front": [r["on_front"] for r in rows], "params": [str(r["params"]) for r in rows],
                "seeds": [r["seeds"] for r in rows],
                **{f"{m}_mean": [r["mean"][m] for r in rows] for m in metrics},
                **{f"{m}_se": [r["se"][m] for r in rows] for m in metrics},
                "beats_beyond_noise": [str(r["beats_beyond_noise"]) for r in rows]}
        client.log_table(run_id, data=data, artifact_file=FRONT_TABLE)


def write_figure(study: optuna.Study, metrics: list[str], table: list, folder: Path) -> Path:
    from matplotlib import pyplot

    from sweeplab.sweep.pareto_figure import pareto_figure

    folder.mkdir(parents=True, exist_ok=True)
    figure = pareto_figure(study, metrics, table)
    path = folder / FRONT_FIGURE
    figure.savefig(path, dpi=100, bbox_inches="tight")
    pyplot.close(figure)
    return path


def summary(study: optuna.Study, metrics: list[str], table: list, wall_s: float, results: Path,
            tracking_hint: str | None, storage_hint: str, page: Path | None = None) -> str:
    n = counts(study, search_trials(study))
    confirm = confirm_study_of(study)
    repeats = len(confirm.get_trials(deepcopy=False)) if confirm is not None else 0
    front = pareto.search_front(study)
    lines = [f"Study {study.study_name}: {sum(n.values())} search trials"
             f"{f' and {repeats} confirmation trials' if repeats else ''} — {n['complete']} complete, "
             f"{n['pruned']} pruned, {n['fail']} failed, {n['running']} running — this sweep took {wall_s:.1f} s",
             f"Pareto front of the search: {len(front)} trial(s) of {', '.join(metrics)}"]
    if table:
        lines += front_table(table, metrics)
    else:  # no confirmation: the search's own values, one seed each
        lines += [f"  trial {t.number}: " + "  ".join(f"{m} {v:.4g}" for m, v in zip(metrics, t.values)) +
                  f"  [{_params(t.params)}]" for t in front[:10]]
    lines.append(f"Results:  {results}")
    if page:
        lines.append(f"Report:   {page}")
    if tracking_hint:
        lines.append(f"MLflow:   {tracking_hint}")
    lines.append(f"Optuna:   optuna-dashboard {storage_hint}")
    return "\n".join(lines)


def front_table(table: list, metrics: list[str]) -> list[str]:
    """The confirmed configurations, front first: parameters, each objective's mean ± SE, memory, whom it beats."""
    costs = [c for c in pareto.SHOWN_COSTS if c not in metrics]
    header = ["", "trial", "params", *(f"{m} ± SE" for m in metrics), *costs, "beats beyond noise"]
    rows = []
    for point in sorted(table, key=lambda p: (not p.on_front, p.trial)):
        mark = "front" if point.on_front else "base" if point.baseline else ""
        mark += " (baseline)" if point.on_front and point.baseline else ""
        mark += " infeasible" if point.infeasible_seeds else ""
        rows.append([mark, str(point.trial), _params(point.params),
                     *(f"{point.mean(i):.4g} ± {_se_text(point.se(i))}" for i in range(len(metrics))),
                     *(_number(point.cost_mean(c)) for c in costs),
                     "; ".join(f"#{k}: {', '.join(v)}" for k, v in sorted(point.beats.items())) or "-"])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    seeds = max(len(p.values) for p in table)
    return [f"Confirmed front ({seeds} seeds each; timing on a shared machine is noisy):",
            *("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *rows])]


def _params(params: dict) -> str:
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def _number(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _se_text(se) -> str:
    return "n/a" if se is None or se != se else f"{se:.2g}"


def _finite(value):
    return None if value is None or value != value else value
