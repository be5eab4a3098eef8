"""What a report says, whatever the sweep (an Optuna study or a plain grid): the verdict, the table of the best
configurations and the baseline, and the points and curves the plots draw — plain values, no Optuna or MLflow."""
import math
from dataclasses import dataclass, field

from sweeplab.labels import short_number, values_text


@dataclass(frozen=True)
class Row:
    """One configuration of the table: its role, name (t3, j2), values and mean ± SE over its seeds."""

    role: str  # best | runner-up | baseline
    label: str
    params: dict
    seeds: int
    mean: float
    se: float | None = None
    test_mean: float | None = None
    test_se: float | None = None
    link: str | None = None  # the run's page in MLflow's UI (a relative #/experiments/... address)

    @property
    def values(self) -> str:
        return " ".join(values_text(self.params))


@dataclass(frozen=True)
class Point:
    """One search trial or grid job, as the parameter plot draws it."""

    label: str
    params: dict
    value: float | None
    role: str | None = None  # best | runner-up | baseline, for the marked ones


@dataclass
class Report:
    kind: str  # study | grid
    title: str
    objective: str
    direction: str
    verdict: str  # one or two sentences, Markdown
    rows: list[Row]
    points: list[Point]
    gain: float | None = None
    gain_se: float | None = None
    facts: str = ""  # counts and settings, one line
    curves: dict[str, list[list[float]]] = field(default_factory=dict)  # row label -> per run, per epoch values
    importances: dict[str, float] | None = None  # search only
    search_values: list[float] | None = None  # the search's objective values, in trial order (search only)


def pm(mean: float | None, se: float | None, digits: int = 4) -> str:
    if mean is None:
        return "–"
    return f"{mean:.{digits}f}" + ("" if se is None or not math.isfinite(se) else f" ± {se:.{digits}f}")


def markdown(report: Report, report_link: str | None = "report.html") -> str:
    """The Markdown note: verdict, table, gain, and where the full report is."""
    names = sorted({k for row in report.rows for k in row.params}, key=lambda k: (k not in PARAM_ORDER, k))
    head = ["", "run", *names, "seeds", report.objective, "test accuracy"]
    lines = [report.verdict, "", "| " + " | ".join(head) + " |",
             "|" + "---|" * len(head)]
    for row in report.rows:
        role = f"**{row.role}**" if row.role == "best" else row.role
        run = f"[{row.label}]({row.link})" if row.link else row.label
        cells = [role, run, *(cell(row.params.get(k)) for k in names), str(row.seeds),
                 pm(row.mean, row.se), pm(row.test_mean, row.test_se)]
        lines.append("| " + " | ".join(cells) + " |")
    if report.facts:
        lines += ["", report.facts]
    if report_link:
        lines += ["", f"Plots (parameters on log axes, curves, importances, expected best against trials): "
                      f"`{report_link}` in this run's artifacts."]
    return "\n".join(lines)


PARAM_ORDER = ("batch_size", "optimizer.lr")


def cell(value) -> str:
    return "–" if value is None else short_number(value) if isinstance(value, (int, float)) else str(value)


def as_table(columns: dict[str, list]) -> dict:
    """Columns as MLflow's table JSON (what `log_table` writes): {"columns": [...], "data": [[...], ...]}."""
    names = list(columns)
    return {"columns": names, "data": [list(row) for row in zip(*(columns[n] for n in names))]}


def run_link(experiment_id: str, run_id: str | None) -> str | None:
    return f"#/experiments/{experiment_id}/runs/{run_id}" if run_id else None
