"""What a finished sweep leaves behind: optimization_results.yaml, Optuna's plots, a one-screen summary."""
import logging
import warnings
from pathlib import Path

import optuna
from omegaconf import OmegaConf

from sweeplab.names import OBJECTIVE_ATTR, RESULTS_FILE
from sweeplab.sweep.study import best_search_trial, confirm_study_of, counts, search_trials

log = logging.getLogger(__name__)


def objective_name(study: optuna.Study) -> str:
    return study.user_attrs.get(OBJECTIVE_ATTR, "val_accuracy")  # studies made before the objective was config


def write_results(study: optuna.Study, sweep_dir: Path, n_search: int | None = None, confirmed=None,
                  direction: str = "maximize") -> Path:
    """The official plugin's file (name, best_params, best_value), plus the trial counts. With a confirmation, the
    answer (best_params, best_value) is the confirmed best and its mean over fresh seeds; the raw search winner is
    kept under `search_best`, the comparison with the baseline under `confirmed`."""
    best = best_search_trial(study)
    results = {
        "name": "optuna",
        "study_name": study.study_name,
        "objective": objective_name(study),
        "best_params": best.params if best else None,
        "best_value": best.value if best else None,
        "best_trial": best.number if best else None,
        "trials": counts(study),
    }
    if confirmed:
        results["search_best"] = {k: results[k] for k in ("best_params", "best_value", "best_trial")}
        results.update(best_params=confirmed.best.params, best_value=confirmed.best.mean,
                       best_trial=confirmed.best.trial, confirmed=_confirmed_section(confirmed, direction))
    path = sweep_dir / RESULTS_FILE
    OmegaConf.save(OmegaConf.create(results), path)
    return path


def write_plots(study: optuna.Study, folder: Path, n_search: int | None = None) -> list[Path]:
    """Optimisation history, learning rate × batch size coloured by the objective, parameter importances and
    learning curves, as PNG files (small, and shown by MLflow's artifact viewer) — of the search trials only: the
    confirmation's repeats on fresh seeds would show as a best value no search trial reached."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from optuna.visualization import matplotlib as vis

    study = search_only(study)

    names = sorted({name for t in study.get_trials(deepcopy=False) for name in t.params})
    pair = [n for n in ("batch_size", "optimizer.lr") if n in names]
    target = objective_name(study)
    plots = {
        "optimization_history": lambda: vis.plot_optimization_history(study, target_name=target),
        "lr_x_batch_size": lambda: vis.plot_contour(study, params=pair, target_name=target)
        if len(pair) == 2 else vis.plot_slice(study, target_name=target),
        "param_importances": lambda: vis.plot_param_importances(study, target_name=target),
        "intermediate_values": lambda: vis.plot_intermediate_values(study),
    }
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, plot in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = plot()
        except (ValueError, RuntimeError) as error:  # e.g. importances need two finished trials
            log.info("skipped plot %s: %s", name, error)
            continue
        figure = getattr(axes, "figure", None) or axes.flat[0].figure  # contour/slice may return an array of axes
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=100, bbox_inches="tight")
        pyplot.close(figure)
        written.append(path)
    return written


def search_only(study: optuna.Study) -> optuna.Study:
    """An in-memory copy of the study holding its search trials alone (studies made before confirmation moved to
    its own study hold confirmation trials too)."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory" for a copy
    try:
        copy = optuna.create_study(directions=study.directions, study_name=study.study_name)
    finally:
        optuna.logging.set_verbosity(level)
    copy.add_trials(search_trials(study))
    copy.set_user_attr(OBJECTIVE_ATTR, objective_name(study))
    return copy


def _confirmed_section(confirmed, direction: str) -> dict:
    def estimate(e):
        return None if e is None else {"trial": e.trial, "params": e.params, "seeds": len(e.values), "mean": e.mean,
                                       "se": _finite(e.se), "test_accuracy_mean": e.test_mean,
                                       "test_accuracy_se": _finite(e.test_se)}

    return {"best": estimate(confirmed.best), "baseline": estimate(confirmed.baseline),
            "gain": confirmed.gain, "gain_se": _finite(confirmed.gain_se), "verdict": confirmed.verdict(direction)}


def _finite(value):
    return None if value is None or value != value else value


def summary(study: optuna.Study, n_search: int, wall_s: float, results: Path, tracking_hint: str | None,
            storage_hint: str, confirmed=None, direction: str = "maximize") -> str:
    best = best_search_trial(study)
    search = counts(study)
    confirm_study = confirm_study_of(study)
    confirm = counts(confirm_study, confirm_study.get_trials(deepcopy=False)) if confirm_study else {}
    n = {state: count + confirm.get(state, 0) for state, count in search.items()}
    lines = [
        f"Study {study.study_name}: {sum(n.values())} trials ({sum(search.values())} search"
        f"{f', {sum(confirm.values())} confirmation' if sum(confirm.values()) else ''})"
        f" — {n['complete']} complete, {n['pruned']} pruned, "
        f"{n['fail']} failed, {n['running']} running — this sweep took {wall_s:.1f} s",
    ]
    if best:
        params = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
        lines.append(f"Best {objective_name(study)} {best.value:.4f} at trial {best.number}: {params}")
    if confirmed:
        lines += _confirmed_lines(confirmed, objective_name(study), direction)
    lines.append(f"Results:  {results}")
    if tracking_hint:
        lines.append(f"MLflow:   {tracking_hint}")
    lines.append(f"Optuna:   optuna-dashboard {storage_hint}")
    return "\n".join(lines)


def _confirmed_lines(confirmed, objective: str, direction: str) -> list[str]:
    def line(label, e):
        test = f", test accuracy {e.test_mean:.4f} ± {_se_text(e.test_se)}" if e.test_mean is not None else ""
        params = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in e.params.items())
        return (f"{label} (trial {e.trial}, {len(e.values)} seeds): {objective} {e.mean:.4f} ± "
                f"{_se_text(e.se)}{test}  [{params}]")

    lines = [line("Confirmed best", confirmed.best)]
    if confirmed.baseline:
        lines.append(line("Baseline      ", confirmed.baseline))
    lines.append(f"Verdict: {confirmed.verdict(direction)}")
    return lines


def _se_text(se) -> str:
    return "n/a" if se is None or se != se else f"{se:.4f}"
