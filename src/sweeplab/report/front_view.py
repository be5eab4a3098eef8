"""A study of several objectives as a note and a page: the verdict in words for its front (which configurations are
on the confirmed front and what each buys, which beat which beyond noise, where the baseline sits), the front's
figure, the table of confirmed configurations, their validation curves and the parameter importances per objective.
A configuration that broke objective.constraints is shown as such, never as an answer."""
import html
import logging
import warnings
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from sweeplab.labels import values_text
from sweeplab.names import RUN_ID_ATTR
from sweeplab.report import figures, page
from sweeplab.report.model import PARAM_ORDER, cell, run_link
from sweeplab.report.study_view import curve, facts, runs_by_configuration
from sweeplab.sweep import pareto
from sweeplab.sweep.study import role, search_trials

log = logging.getLogger(__name__)


@dataclass
class FrontView:
    study: optuna.Study
    metrics: list[str]
    table: list  # pareto.FrontPoint of every confirmed configuration; [] without a confirmation
    points: list  # what the table shows: the confirmed ones, else the search's front (one seed each), front first
    verdict: str
    facts: str
    links: dict = field(default_factory=dict)  # trial number -> its run's page in MLflow's UI
    curves: dict = field(default_factory=dict)  # row label -> per run, per epoch values of the first objective
    importances: dict = field(default_factory=dict)  # objective -> {parameter: importance}

    @property
    def title(self) -> str:
        return f"Study {self.study.study_name}: {' against '.join(self.metrics)}"


def front_view(study: optuna.Study, metrics: list[str], table: list, client=None,
               experiment_id: str | None = None) -> FrontView:
    """``table``: pareto.confirmed_front's; ``client`` (MLflow) gives each run's per-epoch curve and its link."""
    points = _ordered(table or _search_points(study), study.directions)
    trials = study.get_trials(deepcopy=False)
    runs = runs_by_configuration(study, trials)
    curves = {_label(p): [c for t in runs.get(p.trial, []) if (c := curve(t, metrics[0], client))]
              for p in points if p.on_front or p.baseline}
    curves = {label: runs for label, runs in curves.items() if runs}
    links = {p.trial: run_link(experiment_id, trials[p.trial].user_attrs.get(RUN_ID_ATTR))
             for p in points} if experiment_id else {}
    search = search_trials(study)
    infeasible = sum(not pareto.feasible(t) for t in search if t.state == TrialState.COMPLETE)
    said = facts(search, study) + (f" {infeasible} search trial(s) broke objective.constraints." if infeasible else "")
    return FrontView(study, metrics, table, points, verdict(points, metrics, study.directions, bool(table)), said,
                     links, curves, _importances(study, metrics))


def verdict(points: list, metrics: list[str], directions, confirmed: bool) -> str:
    front = [p for p in points if p.on_front]
    if not front:
        return "**No configuration is on the front**: none met objective.constraints on every seed."
    trials = ", ".join(str(p.trial) for p in front)
    if confirmed:
        text = (f"**Confirmed front: trial{'s' if len(front) > 1 else ''} {trials}** of {len(points)} configurations "
                f"trained again on fresh seeds ({max(len(p.values) for p in points)} seeds each). ")
    else:
        text = (f"**Front of the search: trial{'s' if len(front) > 1 else ''} {trials}**, one seed each, not "
                f"confirmed on fresh seeds (hydra.sweeper.confirm.top_k=0): a lead may be luck. ")
    buys = "; ".join(f"{_name(p)} buys {_buys(p, metrics)}" for p in front)
    text += buys[0].upper() + buys[1:] + ". "
    wins = [f"trial {p.trial} beats " + " and ".join(_wins(p, metrics)) for p in points if p.beats]
    if confirmed:
        text += (f"Beyond noise (two standard errors of the paired difference): {'; '.join(wins)}. " if wins else
                 "No configuration beats another beyond noise (two standard errors of the paired difference). ")
    return text + _baseline(points, front, metrics, directions)


def _baseline(points: list, front: list, metrics: list[str], directions) -> str:
    base = next((p for p in points if p.baseline), None)
    if base is None:
        return "No baseline to compare with (outside the search space, or failed)."
    name = f"The baseline, {_name(base)}"
    if base.infeasible_seeds:
        return f"{name}, breaks objective.constraints: not an answer."
    if base.on_front:
        return f"{name}, is on the front itself."
    better = [str(p.trial) for p in front if pareto.dominates(_means(p), _means(base), directions)]
    return (f"{name}, with {_buys(base, metrics)}, is dominated by trial{'s' if len(better) > 1 else ''} "
            f"{', '.join(better)} (by the means).")


def markdown(view: FrontView, report_link: str | None = "report.html") -> str:
    head, rows = _table(view)
    lines = [view.verdict, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for point, cells in rows:
        run = f"[t{point.trial}]({view.links[point.trial]})" if view.links.get(point.trial) else f"t{point.trial}"
        lines.append("| " + " | ".join([f"**{cells[0]}**" if point.on_front else cells[0], run, *cells[2:]]) + " |")
    lines += ["", view.facts]
    if report_link:
        lines += ["", f"Plots (the front, accuracy against time on log axes; curves; importances per objective): "
                      f"`{report_link}` in this run's artifacts."]
    return "\n".join(lines)


def render(view: FrontView) -> str:
    from matplotlib import pyplot

    from sweeplab.sweep.pareto_figure import pareto_figure

    sections = [f"<h1>{html.escape(view.title)}</h1>",
                f'<p class="verdict" id="verdict">{page.inline(view.verdict)}</p>', _html_table(*_table(view)),
                f'<p class="facts">{html.escape(view.facts)}</p>']
    figure = pareto_figure(view.study, view.metrics, view.table)
    try:
        sections.append(page.figure_section("The front", figure, "Every search trial coloured by batch size "
                                            "(crosses: broke a constraint), the search's front as a staircase, the "
                                            "baseline starred, each confirmed configuration at its mean ± SE."))
    finally:
        pyplot.close(figure)
    plots = [("Validation curves", figures.curves(view.curves, view.metrics[0]),
              "The front's configurations and the baseline, epoch by epoch, every seed.")]
    plots += [(f"Parameter importances for {metric}",
               figures.importances(values, f"parameter importances for {metric} (search trials)"), "")
              for metric, values in view.importances.items()]
    sections += [page.figure_section(title, figure, caption) for title, figure, caption in plots if figure]
    return page.document(view.title, sections)


def _html_table(head: list[str], rows: list) -> str:
    """One row per configuration (class front or other, id t<trial>); parameters and values right-aligned."""
    def row(point, cells):
        tds = "".join(f'<td class="num">{html.escape(c)}</td>' if 1 < i < len(cells) - 1 else
                      f"<td>{html.escape(c)}</td>" for i, c in enumerate(cells))
        return f'<tr class="{"front" if point.on_front else "other"}" id="t{point.trial}">{tds}</tr>'

    return ('<table id="results"><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
            + "".join(row(p, cells) for p, cells in rows) + "</table>")


def _table(view: FrontView) -> tuple[list[str], list]:
    """The header and, per configuration, its cells: role, run, parameters, seeds, objectives, costs, wins."""
    names = sorted({k for p in view.points for k in p.params}, key=lambda k: (k not in PARAM_ORDER, k))
    costs = [c for c in pareto.SHOWN_COSTS if c not in view.metrics]
    head = ["", "run", *names, "seeds", *(f"{m} ± SE" for m in view.metrics), *costs, "beats beyond noise"]
    rows = []
    for p in view.points:
        mark = _label(p).split(" ", 1)[1]
        rows.append((p, [mark, f"t{p.trial}", *(cell(p.params.get(k)) for k in names), str(len(p.values)),
                         *(_pm(p.mean(i), p.se(i)) for i in range(len(view.metrics))),
                         *(_pm(p.cost_mean(c), None) for c in costs),
                         "; ".join(_wins(p, view.metrics, "t")) or "–"]))
    return head, rows


def _search_points(study: optuna.Study) -> list:
    """Without a confirmation: the search's front and the baseline trial, one seed each."""
    front = pareto.search_front(study)
    on_front = {t.number for t in front}
    base = [t for t in search_trials(study, (TrialState.COMPLETE,)) if role(t) == "baseline"]
    return [pareto.FrontPoint(t.number, dict(t.params), role(t) == "baseline", {0: list(t.values)},
                              {0: {k: v for k, v in t.user_attrs.items() if isinstance(v, (int, float))}},
                              infeasible_seeds=int(not pareto.feasible(t)), on_front=t.number in on_front)
            for t in front + [t for t in base[-1:] if t.number not in on_front]]


def _ordered(points: list, directions) -> list:
    sign = 1 if directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1
    return sorted(points, key=lambda p: (not p.on_front, -sign * p.mean(0), p.trial))


def _importances(study: optuna.Study, metrics: list[str]) -> dict:
    """fANOVA importances of the search trials for each objective; none with fewer than three complete trials."""
    from sweeplab.sweep.report import search_only

    if len(search_trials(study, (TrialState.COMPLETE,))) < 3:
        return {}
    copy, found = search_only(study), {}
    for i, metric in enumerate(metrics):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found[metric] = optuna.importance.get_param_importances(copy, target=lambda t, i=i: t.values[i])
        except (ValueError, RuntimeError) as error:
            log.debug("no importances for %s: %s", metric, error)
    return found


def _name(point) -> str:
    return f"trial {point.trial} ({' '.join(values_text(point.params))})"


def _buys(point, metrics: list[str]) -> str:
    first, *others = [f"{m} {_pm(point.mean(i), point.se(i))}" for i, m in enumerate(metrics)]
    costs = [f"{c} {_pm(point.cost_mean(c), None)}" for c in pareto.SHOWN_COSTS
             if c not in metrics and point.cost_mean(c) is not None]
    return first + (" at " + ", ".join(others + costs) if others or costs else "")


def _wins(point, metrics: list[str], prefix: str = "") -> list[str]:
    """["0, 3 in val_accuracy", "5 in train_time_s"]: whom the point beats beyond noise, per objective."""
    losers = {m: [f"{prefix}{other}" for other, won in sorted(point.beats.items()) if m in won] for m in metrics}
    return [f"{', '.join(trials)} in {m}" for m, trials in losers.items() if trials]


def _means(point) -> list[float]:
    return [point.mean(i) for i in range(len(next(iter(point.values.values()))))]


def _label(point) -> str:
    kind = "infeasible" if point.infeasible_seeds else "front" if point.on_front else "dominated"
    return f"t{point.trial} {kind}" + (", baseline" if point.baseline else "")


def _pm(mean, se) -> str:
    if mean is None:
        return "–"
    digits = 4 if abs(mean) < 10 else 1  # accuracies and seconds to 4 decimals, megabytes to one
    return f"{mean:.{digits}f}" + ("" if se is None or se != se else f" ± {se:.{digits}f}")
