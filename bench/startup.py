"""Where the wall time of one short training job goes: start-up, data, training, tracking, exit.

    python bench/startup.py                      # python train.py dataset=fashion_mnist epochs=1
    python bench/startup.py --runs 3 -- model=ffn512
    mkdir /tmp/before && git archive COMMIT | tar -x -C /tmp/before && ln -s $PWD/data /tmp/before/data
    python bench/startup.py --baseline /tmp/before    # before / after, runs alternating

Runs the real command in fresh processes against a temporary MLflow store (sqlite) and output folder:
once on a new, empty store (MLflow creates its tables: the first job on a machine), then ``--runs`` times on
that existing store (every later job). Each of those runs goes through bench/_probe.py, which runs train.py
unchanged with timestamps around the job's phases and counts imports per phase; ``-X importtime`` names the
packages that the import time goes to. The same command without any instrumentation gives the plain wall time.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).with_name("_probe.py")

INTERPRETER = "start-up: interpreter"
EXIT = "exit: interpreter finalization"
# Display order; each phase belongs to one of the groups of the summary.
PHASES = {
    INTERPRETER: "start-up",
    "start-up: Hydra (import, compose, logging, output dir)": "start-up",
    "start-up: import sweeplab.job": "start-up",
    "tracking: connect (store init / schema check)": "start-up",
    "data: load + split": "data",
    "setup: model": "start-up",
    "tracking: experiment + start run (params, tags, config)": "start-up",
    "training (epochs incl. validation)": "training",
    "tracking: per-epoch metrics": "tracking",
    "final: test evaluation": "training",
    "job: other (settings, optimizer, saving weights)": "start-up",
    "tracking: final metrics, artifacts, status": "tracking",
    "exit: Hydra wrap-up": "exit",
    "exit: atexit handlers (MLflow, logging, ...)": "exit",
    EXIT: "exit",
}
GROUPS = ["start-up", "data", "training", "tracking", "exit"]
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def job_command(python: str, overrides: list[str]) -> list[str]:
    return [python, "train.py", *overrides]


def environment(root: Path) -> dict:
    """Import the tree's own sources first (the venv's editable install points at this tree)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root / "src"), *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_plain(args, root: Path, overrides) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of the command as it is, without any instrumentation."""
    started = time.perf_counter()
    process = subprocess.Popen(job_command(args.python, overrides), cwd=root, env=environment(root),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status):
        sys.exit(f"plain run failed ({os.waitstatus_to_exitcode(status)}):\n{stderr[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime


def run_probe(args, root: Path, overrides, out: Path) -> dict:
    command = [args.python, "-X", "importtime", str(PROBE), str(out), "train.py", *overrides]
    spawned = time.time()
    result = subprocess.run(command, cwd=root, env=environment(root), capture_output=True, text=True)
    ended = time.time()
    if result.returncode:
        sys.exit(f"probe run failed ({result.returncode}):\n{result.stderr[-3000:]}")
    probe = json.loads(out.read_text())
    work = defaultdict(float, probe["work"])
    imports = defaultdict(float, probe["imports"])
    work[INTERPRETER] += probe["t_start"] - spawned
    work[EXIT] += ended - probe["t_end"]
    packages = defaultdict(float)
    for line in result.stderr.splitlines():
        match = IMPORT_LINE.match(line)
        if match:
            packages[match.group(4).split(".")[0]] += int(match.group(1)) / 1e6
    return {"wall": ended - spawned, "work": work, "imports": imports, "packages": packages}


def median_run(runs: list[dict]) -> dict:
    """Per-phase medians over the runs, scaled so that they add up to the median wall time."""
    wall = statistics.median(r["wall"] for r in runs)
    phases = set().union(*(r["work"] for r in runs), *(r["imports"] for r in runs))
    work = {p: statistics.median(r["work"].get(p, 0.0) for r in runs) for p in phases}
    imports = {p: statistics.median(r["imports"].get(p, 0.0) for r in runs) for p in phases}
    scale = wall / (sum(work.values()) + sum(imports.values()))
    packages = defaultdict(float)
    for r in runs:
        for name, seconds in r["packages"].items():
            packages[name] += seconds / len(runs)
    return {"wall": wall, "work": {p: v * scale for p, v in work.items()},
            "imports": {p: v * scale for p, v in imports.items()}, "packages": packages}


def print_breakdown(title: str, run: dict) -> None:
    wall = run["wall"]
    print(f"\n### {title}: {wall:.2f} s wall\n")
    print("| phase | seconds | of wall | of which imports |")
    print("|---|---:|---:|---:|")
    known = [p for p in PHASES if p in run["work"] or p in run["imports"]]
    others = sorted((set(run["work"]) | set(run["imports"])) - set(PHASES))
    for phase in known + others:
        seconds = run["work"].get(phase, 0.0) + run["imports"].get(phase, 0.0)
        imported = run["imports"].get(phase, 0.0)
        print(f"| {phase} | {seconds:.2f} | {seconds / wall:.0%} | {imported:.2f} |")
    groups = defaultdict(float)
    for phase in known + others:
        groups[PHASES.get(phase, "start-up")] += run["work"].get(phase, 0.0) + run["imports"].get(phase, 0.0)
    total_imports = sum(run["imports"].values())
    print("\n| group | seconds | of wall |")
    print("|---|---:|---:|")
    for group in GROUPS:
        print(f"| {group} | {groups[group]:.2f} | {groups[group] / wall:.0%} |")
    print(f"| (imports, all phases) | {total_imports:.2f} | {total_imports / wall:.0%} |")
    top = sorted(run["packages"].items(), key=lambda item: -item[1])[:10]
    print("\nimport time by package (-X importtime, self time, inflated by its own bookkeeping): "
          + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in top))


def groups_of(run: dict) -> dict[str, float]:
    groups = defaultdict(float)
    for phase in set(run["work"]) | set(run["imports"]):
        groups[PHASES.get(phase, "start-up")] += run["work"].get(phase, 0.0) + run["imports"].get(phase, 0.0)
    groups["(imports, all phases)"] = sum(run["imports"].values())
    return groups


def print_comparison(results: dict, args) -> None:
    names = list(results)
    warm = {name: median_run(r["warm"]) for name, r in results.items()}
    print(f"\n### before / after: `python train.py dataset={args.dataset} epochs={args.epochs}`, existing store\n")
    print("| | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for title, key in (("wall, plain run (median)", "plain"), ("wall, plain run, mlflow.enabled=false", "untracked")):
        print(f"| {title} | " + " | ".join(f"{statistics.median(w for w, _ in results[n][key]):.2f} s" for n in names)
              + " |")
        print(f"| CPU user+sys, same runs | "
              + " | ".join(f"{statistics.median(c for _, c in results[n][key]):.2f} s" for n in names) + " |")
    print("| wall, instrumented run | " + " | ".join(f"{warm[n]['wall']:.2f} s" for n in names) + " |")
    for group in [*GROUPS, "(imports, all phases)"]:
        print(f"| {group} | " + " | ".join(
            f"{groups_of(warm[n])[group]:.2f} s ({groups_of(warm[n])[group] / warm[n]['wall']:.0%})" for n in names)
            + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2, help="runs on the existing store (default 2)")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--baseline", type=Path, help="another tree of this project (e.g. `git archive` of the last "
                        "commit) to measure the same way, its runs alternating with this tree's")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores and outputs")
    parser.add_argument("overrides", nargs="*", help="more train.py overrides (after --)")
    args = parser.parse_args()

    scratch = Path(tempfile.mkdtemp(prefix="sweeplab-startup-"))
    trees = {"this tree": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    results = {}
    for index, (name, root) in enumerate(trees.items()):
        store = scratch / str(index)
        overrides = [
            f"dataset={args.dataset}", f"epochs={args.epochs}",
            f"hydra.run.dir={store}/outputs/${{now:%H-%M-%S-%f}}",
            f"mlflow.tracking_uri=sqlite:///{store}/mlflow.db", f"mlflow.artifact_location={store}/mlruns",
            *args.overrides,
        ]
        results[name] = {"root": root, "overrides": overrides, "store": store, "warm": [], "plain": [],
                         "untracked": []}
    print(f"command: python train.py dataset={args.dataset} epochs={args.epochs} "
          + " ".join(args.overrides) + " (+ a temporary hydra.run.dir and MLflow store)")
    try:
        for name, r in results.items():
            r["store"].mkdir(parents=True)
            r["cold"] = run_probe(args, r["root"], r["overrides"], r["store"] / "probe-cold.json")
        for index in range(args.runs):
            for name, r in results.items():
                r["plain"].append(run_plain(args, r["root"], r["overrides"]))
                r["warm"].append(run_probe(args, r["root"], r["overrides"], r["store"] / f"probe-{index}.json"))
        for index in range(args.runs):
            for name, r in results.items():
                r["untracked"].append(run_plain(args, r["root"], [*r["overrides"], "mlflow.enabled=false"]))
    finally:
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    for name, r in results.items():
        print(f"\n## {name}: {r['root']}")
        print_breakdown("first job on a new MLflow store (probe + importtime)", r["cold"])
        print_breakdown(f"later jobs, existing store (median of {args.runs}, probe + importtime)",
                        median_run(r["warm"]))
        print()
        for title, runs in (("existing store", r["plain"]), ("mlflow.enabled=false", r["untracked"])):
            walls, cpus = [w for w, _ in runs], [c for _, c in runs]
            print(f"plain `python train.py dataset={args.dataset} epochs={args.epochs}`, {title}: wall median "
                  f"{statistics.median(walls):.2f} s ({', '.join(f'{w:.2f}' for w in walls)}), CPU (user+sys) "
                  f"median {statistics.median(cpus):.2f} s ({', '.join(f'{c:.2f}' for c in cpus)})")
    if len(results) > 1:
        print_comparison(results, args)
    print(f"\ncpu load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
