"""The front, seen: the first objective (accuracy) against the second (time) — every search trial coloured by batch
size, the search's front joined by a line, the baseline marked, each confirmed configuration at its mean over seeds
with ± SE error bars on both axes. A cost axis (time, memory) is logarithmic: costs span orders of magnitude.

``pareto_figure`` returns a matplotlib Figure, for the parent run's PNG and for any report that embeds it."""
import matplotlib

from sweeplab.objective import COST_METRICS
from sweeplab.sweep import pareto
from sweeplab.sweep.study import role, search_trials

matplotlib.use("Agg")


def pareto_figure(study, metrics: list[str], table: list, colour_by: str = "batch_size"):
    """``study``: the search study; ``metrics``: its objectives' names; ``table``: the confirmed configurations
    (pareto.confirmed_front), [] before confirmation."""
    from matplotlib import pyplot, ticker

    x, y = 1, 0  # the second objective across, the first up
    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    search = [t for t in search_trials(study) if t.values is not None]
    keys = sorted({t.params.get(colour_by) for t in search if colour_by in t.params}, key=_order)
    colours = pyplot.get_cmap("viridis", max(len(keys), 1))
    for i, key in enumerate(keys or [None]):
        group = [t for t in search if t.params.get(colour_by) == key and pareto.feasible(t)]
        if group:
            axes.scatter([t.values[x] for t in group], [t.values[y] for t in group], s=22, alpha=0.6,
                         color=colours(i), label=f"{colour_by}={key}" if key is not None else "search trials")
    infeasible = [t for t in search if not pareto.feasible(t)]
    if infeasible:
        axes.scatter([t.values[x] for t in infeasible], [t.values[y] for t in infeasible], marker="x", s=22,
                     color="grey", label="infeasible (constraints)")
    front = sorted(pareto.search_front(study), key=lambda t: t.values[x])
    if front:
        axes.plot([t.values[x] for t in front], [t.values[y] for t in front], "--", color="black", lw=0.8,
                  drawstyle="steps-post", label="search front")
    for point in table:
        axes.errorbar(point.mean(x), point.mean(y), xerr=_bar(point.se(x)), yerr=_bar(point.se(y)),
                      fmt="D" if point.on_front else "o", ms=7, capsize=3, color="crimson" if point.on_front else
                      "grey", mfc="none" if not point.on_front else "crimson", zorder=5)
    if any(p.on_front for p in table):
        axes.plot([], [], "D", color="crimson", label="confirmed front (mean ± SE)")
    if any(not p.on_front for p in table):
        axes.plot([], [], "o", color="grey", mfc="none", label="confirmed, dominated")
    baseline = next((t for t in search if role(t) == "baseline"), None)
    if baseline is not None:
        axes.scatter([baseline.values[x]], [baseline.values[y]], marker="*", s=220, color="orange",
                     edgecolor="black", zorder=6, label="baseline (search trial)")
    for axis, metric in ((axes.xaxis, metrics[x]), (axes.yaxis, metrics[y])):
        if metric in COST_METRICS:
            (axes.set_xscale if axis is axes.xaxis else axes.set_yscale)("log")
            axis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))  # labels at 1, 2, 5 x 10^k
            axis.set_major_formatter(ticker.FormatStrFormatter("%.3g"))  # 0.1, not 10^-1
            axis.set_minor_formatter(ticker.NullFormatter())  # minor labels crowd a short span
    axes.set_xlabel(f"{metrics[x]} ({_direction(study, x)})")
    axes.set_ylabel(f"{metrics[y]} ({_direction(study, y)})")
    axes.set_title(f"{study.study_name}: Pareto front")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    return figure


def _order(value):
    return (0, value, "") if isinstance(value, (int, float)) else (1, 0, str(value))


def _bar(se):
    return None if se is None or se != se else se


def _direction(study, i: int) -> str:
    return "higher is better" if study.directions[i].name == "MAXIMIZE" else "lower is better"
