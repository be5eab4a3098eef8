"""What a finished sweep leaves behind: optimization_results.yaml, Optuna's plots, a one-screen summary."""
import logging
import warnings
from pathlib import Path

import optuna
from omegaconf import OmegaConf

from sweeplab.sweep.study import best_trial, counts
from sweeplab.sweep.trial_link import OBJECTIVE_ATTR


def objective_name(study: optuna.Study) -> str:
    return study.user_attrs.get(OBJECTIVE_ATTR, "objective")

log = logging.getLogger(__name__)


def write_results(study: optuna.Study, sweep_dir: Path) -> Path:
    """The official plugin's file (name, best_params, best_value), plus the trial counts."""
    best = best_trial(study)
    results = {
        "name": "optuna",
        "study_name": study.study_name,
        "best_params": best.params if best else None,
        "best_value": best.value if best else None,
        "best_trial": best.number if best else None,
        "trials": counts(study),
    }
    path = sweep_dir / "optimization_results.yaml"
    OmegaConf.save(OmegaConf.create(results), path)
    return path


def write_plots(study: optuna.Study, folder: Path) -> list[Path]:
    """Optimisation history, learning rate × batch size coloured by the objective, parameter importances and
    learning curves, as PNG files (small, and shown by MLflow's artifact viewer)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from optuna.visualization import matplotlib as vis

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


def summary(study: optuna.Study, wall_s: float, results: Path, tracking_hint: str | None, storage_hint: str) -> str:
    best = best_trial(study)
    n = counts(study)
    lines = [
        f"Study {study.study_name}: {sum(n.values())} trials — {n['complete']} complete, {n['pruned']} pruned, "
        f"{n['fail']} failed, {n['running']} running — this sweep took {wall_s:.1f} s",
    ]
    if best:
        params = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in best.params.items())
        lines.append(f"Best {objective_name(study)} {best.value:.4f} at trial {best.number}: {params}")
    lines.append(f"Results:  {results}")
    if tracking_hint:
        lines.append(f"MLflow:   {tracking_hint}")
    lines.append(f"Optuna:   optuna-dashboard {storage_hint}")
    return "\n".join(lines)
