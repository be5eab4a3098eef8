"""report.html: one self-contained page (no network, no scripts) with the verdict, the table and the plots as
inline SVG. It opens from disk and inside MLflow's artifact viewer alike."""
import html
import re

from sweeplab.report import figures
from sweeplab.report.model import PARAM_ORDER, Report, cell, pm

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 60em; color: #222; padding: 0 1em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.verdict { font-size: 1.08em; background: #f3f7fb; border-left: 4px solid #3a78b5; padding: .6em 1em; }
table { border-collapse: collapse; margin: .6em 0; } td, th { padding: .25em .7em; border-bottom: 1px solid #e4e4e4; }
th { text-align: left; background: #fafafa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.best, tr.front { font-weight: 600; background: #fff8e6; } .facts, .note { color: #555; font-size: .92em; }
figure { margin: 1em 0; } svg { max-width: 100%; height: auto; }
"""


def render(report: Report) -> str:
    maximize = report.direction == "maximize"
    sections = [
        f"<h1>{html.escape(report.title)}</h1>",
        f'<p class="verdict" id="verdict">{inline(report.verdict)}</p>',
        _table(report),
    ]
    if report.facts:
        sections.append(f'<p class="facts">{html.escape(report.facts)}</p>')
    plots = [
        ("Parameters", figures.parameters(report.points, report.objective, maximize),
         "Each dot a search trial (grid job), coloured by its value; log axes."),
        ("Validation curves", figures.curves(report.curves, report.objective),
         "The table's configurations, epoch by epoch, every seed."),
        ("Parameter importances", figures.importances(report.importances), ""),
        ("Would more trials pay?", figures.expected_best(report.search_values, report.objective, maximize),
         "Expected best value of a search with n of these trials (Dodge et al., EMNLP 2019): still rising at the "
         "right edge means more trials would likely find better; flat means they would not."),
    ]
    sections += [figure_section(title, figure, caption) for title, figure, caption in plots if figure is not None]
    return document(report.title, sections)


def document(title: str, sections: list[str]) -> str:
    """The page around its sections: one style sheet, nothing to fetch."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(sections) + "\n</body></html>\n")


def figure_section(title: str, figure, caption: str = "") -> str:
    return (f"<h2>{html.escape(title)}</h2><figure>{figures.svg(figure)}"
            + (f'<figcaption class="note">{html.escape(caption)}</figcaption>' if caption else "") + "</figure>")


def _table(report: Report) -> str:
    names = sorted({k for row in report.rows for k in row.params}, key=lambda k: (k not in PARAM_ORDER, k))
    head = ["", "run", *names, "seeds", html.escape(report.objective), "test accuracy"]
    rows = []
    for row in report.rows:
        values = [cell(row.params.get(k)) for k in names]
        cells = [f"<td>{row.role}</td><td>{html.escape(row.label)}</td>",
                 *(f'<td class="num">{html.escape(v)}</td>' for v in values),
                 f'<td class="num">{row.seeds}</td>', f'<td class="num">{pm(row.mean, row.se)}</td>',
                 f'<td class="num">{pm(row.test_mean, row.test_se)}</td>']
        rows.append(f'<tr class="{row.role}">' + "".join(cells) + "</tr>")
    return ('<table id="results"><tr>' + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
            + "".join(rows) + "</table>")


def inline(markdown: str) -> str:
    """The verdict's Markdown (bold and code spans only) as HTML."""
    text = html.escape(markdown)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)
