"""The report's plots, drawn with matplotlib and returned as inline SVG (text kept as text: small, sharp, no
JavaScript). Batch sizes and learning rates sit on log axes, in numeric order."""
import io
import math

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from sweeplab.labels import short_number
from sweeplab.report import expected_max
from sweeplab.report.model import PARAM_ORDER, Point

MARKS = {"best": ("*", 260, "winner"), "runner-up": ("D", 70, "runner-up"), "baseline": ("s", 80, "baseline")}
LOG_KEYS = ("batch_size", "lr", "weight_decay", "width")  # keys whose values span orders of magnitude


def svg(figure: Figure) -> str:
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def numeric_keys(points: list[Point]) -> list[str]:
    """Searched keys with numeric values that differ between points, batch size and learning rate first."""
    keys = {k for p in points for k in p.params}
    numeric = [k for k in keys if _all_numbers(p.params.get(k) for p in points if k in p.params)
               and len({p.params.get(k) for p in points}) > 1]
    return sorted(numeric, key=lambda k: (PARAM_ORDER.index(k) if k in PARAM_ORDER else len(PARAM_ORDER), k))


def parameters(points: list[Point], objective: str, maximize: bool) -> Figure | None:
    """Learning rate × batch size (or the first two numeric keys), coloured by the objective, the winner, the
    runner-ups and the baseline marked; one numeric key: the objective against it."""
    keys = numeric_keys(points)
    done = [p for p in points if p.value is not None and all(k in p.params for k in keys[:2])]
    if not keys or not done:
        return None
    figure = Figure(figsize=(6.4, 4.4))
    axes = figure.subplots()
    x_key = keys[1] if len(keys) > 1 and keys[0] == "batch_size" else keys[0]
    y_key = keys[0] if x_key != keys[0] else (keys[1] if len(keys) > 1 else None)
    xs = [float(p.params[x_key]) for p in done]
    ys = [float(p.params[y_key]) if y_key else p.value for p in done]
    colours = dict(c=[p.value for p in done], cmap="viridis" if maximize else "viridis_r") if y_key else {}
    drawn = axes.scatter(xs, ys, s=36, edgecolors="none", alpha=0.85, **colours)
    if y_key:
        figure.colorbar(drawn, ax=axes, label=objective)
    for role, (marker, size, label) in MARKS.items():
        marked = [(x, y, p) for x, y, p in zip(xs, ys, done) if p.role == role]
        if marked:
            axes.scatter([m[0] for m in marked], [m[1] for m in marked], marker=marker, s=size, facecolors="none",
                         edgecolors="crimson" if role == "best" else "black", linewidths=1.6, label=label)
            for x, y, p in marked:
                axes.annotate(p.label, (x, y), textcoords="offset points", xytext=(7, 5), fontsize=8)
    _scale(axes.set_xscale, axes.xaxis, x_key, xs)
    axes.set_xlabel(x_key)
    if y_key:
        _scale(axes.set_yscale, axes.yaxis, y_key, ys)
    axes.set_ylabel(y_key or objective)
    axes.margins(0.08)
    axes.legend(loc="best", fontsize=8, framealpha=0.8)
    axes.set_title(f"{objective} by {x_key}" + (f" × {y_key}" if y_key else ""), fontsize=10)
    return figure


def _scale(set_scale, axis, key: str, values: list[float]) -> None:
    """Log axes for keys that span orders of magnitude; a few distinct values (batch sizes) as the ticks."""
    positive = all(v > 0 for v in values)
    spans = positive and max(values) / min(values) >= 8
    if positive and (spans or key.rsplit(".", 1)[-1] in LOG_KEYS):
        set_scale("log", base=2 if key == "batch_size" else 10)
    distinct = sorted(set(values))
    short = matplotlib.ticker.FuncFormatter(lambda v, _: short_number(v))
    if len(distinct) <= 8 and all(v.is_integer() for v in distinct):  # batch sizes, widths: each value a tick
        axis.set_major_locator(FixedLocator(distinct))
        axis.set_minor_locator(NullLocator())
        axis.set_major_formatter(short)
    elif positive and (spans or key.rsplit(".", 1)[-1] in LOG_KEYS):  # 1e-4, 2e-4, 5e-4, 1e-3, ...: no crowding
        axis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.set_major_formatter(short)


def curves(curves: dict[str, list[list[float]]], objective: str) -> Figure | None:
    """Per-epoch objective of each configuration's runs (its seeds), one colour per configuration."""
    if not any(runs for runs in curves.values()):
        return None
    figure = Figure(figsize=(6.4, 4.0))
    axes = figure.subplots()
    palette = matplotlib.colormaps["tab10"]
    for index, (label, runs) in enumerate(curves.items()):
        for number, run in enumerate(runs):
            axes.plot(range(1, len(run) + 1), run, color=palette(index % 10), alpha=0.9 if number == 0 else 0.45,
                      linewidth=1.6 if number == 0 else 1.0, label=label if number == 0 else None, marker=".")
    axes.set_xlabel("epoch")
    axes.set_ylabel(objective)
    axes.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes.legend(fontsize=8, loc="best")
    axes.set_title(f"validation curves ({objective}), every seed of each configuration", fontsize=10)
    return figure


def importances(values: dict[str, float] | None, title: str = "parameter importances (search trials)") -> Figure | None:
    if not values:
        return None
    names = sorted(values, key=values.get)
    figure = Figure(figsize=(6.4, 0.6 + 0.45 * len(names)))
    axes = figure.subplots()
    axes.barh(names, [values[n] for n in names], color="steelblue")
    axes.set_xlabel("importance (fANOVA, share of the objective's variance)")
    axes.set_title(title, fontsize=10)
    return figure


def expected_best(values: list[float] | None, objective: str, maximize: bool) -> Figure | None:
    values = [v for v in values or [] if v is not None and math.isfinite(v)]
    if len(values) < 2:
        return None
    n, mean, low, high = expected_max.curve(values, maximize)
    figure = Figure(figsize=(6.4, 3.8))
    axes = figure.subplots()
    axes.fill_between(n, low, high, color="steelblue", alpha=0.25, label="90 % bootstrap band")
    axes.plot(n, mean, color="steelblue", marker=".", label=f"expected best {objective}")
    axes.set_xlabel("number of search trials")
    axes.set_ylabel(f"expected best {objective}")
    axes.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes.legend(fontsize=8, loc="lower right" if maximize else "upper right")
    axes.set_title("expected best value against the number of trials (Dodge et al. 2019)", fontsize=10)
    return figure


def _all_numbers(values) -> bool:
    try:
        return all(not isinstance(v, bool) and math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False
