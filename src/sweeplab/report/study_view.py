"""An Optuna study (and its confirmation's answer) as a Report: the table of the confirmed configurations and
the baseline, the search trials as points, the curves of each configuration's runs, the importances."""
import logging
import math
import warnings
from dataclasses import replace

import optuna
from optuna.trial import TrialState

from sweeplab.labels import values_text
from sweeplab.names import CONFIRMS_ATTR, ROLE_ATTR, RUN_ID_ATTR, SAMPLER_ATTR
from sweeplab.report.model import Point, Report, Row, run_link
from sweeplab.sweep.study import confirm_study_of, search_trials

log = logging.getLogger(__name__)
RUNNER_UPS = 2


def study_report(study: optuna.Study, answer, direction: str, objective: str,
                 client=None, experiment_id: str | None = None) -> Report:
    """``answer`` is sweeplab.sweep.confirmation.answer's (None without a confirmation); ``client`` (MLflow) gives
    each run's per-epoch curve, else the trials' reported values draw it."""
    trials = study.get_trials(deepcopy=False)
    search = search_trials(study)
    complete = [t for t in search if t.state == TrialState.COMPLETE]
    maximize = direction == "maximize"
    rows = _confirmed_rows(answer, maximize) if answer else _search_rows(complete, maximize)
    gain, gain_se = (answer.gain, _finite(answer.gain_se)) if answer and answer.baseline else (None, None)
    if experiment_id:
        rows = [replace(r, link=run_link(experiment_id, trials[int(r.label[1:])].user_attrs.get(RUN_ID_ATTR)))
                for r in rows]
    roles = {int(r.label[1:]): r.role for r in rows}
    points = [Point(f"t{t.number}", dict(t.params), t.value, roles.get(t.number)) for t in complete]
    runs = runs_by_configuration(study, trials)
    curves = {f"{r.label} {r.role}": [curve(t, objective, client) for t in runs.get(int(r.label[1:]), [])]
              for r in rows}
    return Report(
        kind="study", title=f"Study {study.study_name}", objective=objective, direction=direction,
        verdict=verdict(rows, objective, answer, direction), rows=rows, points=points, gain=gain, gain_se=gain_se,
        facts=facts(search, study), curves=curves, importances=_importances(study, complete),
        search_values=[t.value for t in complete],
    )


def _confirmed_rows(answer, maximize: bool) -> list[Row]:
    def row(role, e):
        return Row(role, f"t{e.trial}", dict(e.params), len(e.values), e.mean, _finite(e.se), e.test_mean,
                   _finite(e.test_se))

    others = sorted((e for e in answer.table if e is not answer.best and e is not answer.baseline),
                    key=lambda e: -e.mean if maximize else e.mean)
    rows = [row("best", answer.best)] + [row("runner-up", e) for e in others]
    if answer.baseline is not None and answer.baseline is not answer.best:
        rows.append(row("baseline", answer.baseline))
    return rows


def _search_rows(complete: list, maximize: bool) -> list[Row]:
    """Without a confirmation: the best search trials (one seed each) and the baseline."""
    ranked = sorted(complete, key=lambda t: (-t.value if maximize else t.value, t.number))
    chosen = ranked[:1 + RUNNER_UPS]
    rows = [Row("best" if i == 0 else "runner-up", f"t{t.number}", dict(t.params), 1, t.value,
                test_mean=t.user_attrs.get("test_accuracy")) for i, t in enumerate(chosen)]
    baseline = next((t for t in complete if t.user_attrs.get(ROLE_ATTR) == "baseline"), None)
    if baseline is not None and baseline not in chosen:
        rows.append(Row("baseline", f"t{baseline.number}", dict(baseline.params), 1, baseline.value,
                        test_mean=baseline.user_attrs.get("test_accuracy")))
    return rows


def verdict(rows: list[Row], objective: str, answer, direction: str) -> str:
    best = rows[0]
    test = f", test accuracy {_pm(best.test_mean, best.test_se)}" if best.test_mean is not None else ""
    seeds = f"over {best.seeds} seeds" if best.seeds > 1 else "on one seed"
    said = f"{objective} {_pm(best.mean, best.se)} {seeds}{test}"
    name = f"trial {best.label[1:]} ({' '.join(values_text(best.params))})"
    if answer is None:
        return (f"**Best of the search: {name}**, {said}. Not confirmed on fresh seeds "
                f"(hydra.sweeper.confirm.top_k=0): its lead over the others may be luck.")
    baseline = next((r for r in rows if r.role == "baseline"), None)
    if answer.baseline is None:
        return f"**Confirmed best: {name}**, {said}. No baseline to compare with (outside the search space, or failed)."
    if baseline is None:  # the baseline itself won
        return f"**The baseline, {name}, is the confirmed best**: {said}. The search found nothing better."
    better = answer.gain > 0 if direction == "maximize" else answer.gain < 0
    noise = "beyond noise (more than two standard errors)" if answer.beyond_noise else \
        "within noise (not more than two standard errors)"
    return (f"**Confirmed best: {name}**, {said}; the baseline (trial {baseline.label[1:]}, "
            f"{' '.join(values_text(baseline.params))}) {_pm(baseline.mean, baseline.se)}. "
            f"Gain **{answer.gain:+.4f} ± {_number(answer.gain_se)}**: {noise}"
            + ("." if better or not answer.beyond_noise else ", and worse than the baseline."))


def runs_by_configuration(study, trials) -> dict[int, list]:
    """Each configuration's trials: its search trial, then the confirmation trials that repeat it (in this study
    or a sibling study `<name>.confirm` in the same storage)."""
    runs = {t.number: [t] for t in trials if CONFIRMS_ATTR not in t.user_attrs}
    confirming = [t for t in trials if CONFIRMS_ATTR in t.user_attrs]
    sibling = confirm_study_of(study)
    if sibling is not None:
        confirming += [t for t in sibling.get_trials(deepcopy=False) if CONFIRMS_ATTR in t.user_attrs]
    for trial in confirming:
        if trial.state == TrialState.COMPLETE:
            runs.setdefault(int(trial.user_attrs[CONFIRMS_ATTR]), []).append(trial)
    return runs


def curve(trial, objective: str, client) -> list[float]:
    run_id = trial.user_attrs.get(RUN_ID_ATTR)
    if client is not None and run_id:
        try:
            history = client.get_metric_history(run_id, objective)
            return [m.value for m in sorted(history, key=lambda m: m.step)]
        except Exception as error:  # the report goes on with what the study holds
            log.debug("no history for run %s: %s", run_id, error)
    return [trial.intermediate_values[k] for k in sorted(trial.intermediate_values)]


def _importances(study, complete: list) -> dict[str, float] | None:
    from sweeplab.sweep.report import search_only

    if len(complete) < 3:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return optuna.importance.get_param_importances(search_only(study))
    except (ValueError, RuntimeError) as error:
        log.debug("no importances: %s", error)
        return None


def facts(search: list, study) -> str:
    sibling = confirm_study_of(study)
    confirming = sibling.get_trials(deepcopy=False) if sibling is not None else []
    trials = search + confirming
    states = [t.state for t in trials]
    sampler = study.user_attrs.get(SAMPLER_ATTR, "")
    parts = f"{len(search)} search" + (f", {len(confirming)} confirmation" if confirming else "")
    return (f"{len(trials)} trials ({parts})"
            f": {states.count(TrialState.COMPLETE)} complete, {states.count(TrialState.PRUNED)} pruned, "
            f"{states.count(TrialState.FAIL)} failed" + (f"; sampler {sampler}" if sampler else "") + ".")


def _pm(mean, se) -> str:
    return f"{mean:.4f}" + ("" if se is None or not math.isfinite(se) else f" ± {se:.4f}")


def _number(value) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _finite(value):
    return None if value is None or not math.isfinite(value) else value
