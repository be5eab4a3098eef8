"""`python -m sweeplab.data.reachable mnist`: exit 0 when the dataset is on disk or a mirror answers, else 1."""
import argparse
import sys
import time
import urllib.request

from omegaconf import OmegaConf

from sweeplab.building import build
from sweeplab.data.sources import TorchvisionSource
from sweeplab.paths import PACKAGE_CONF, resolve


def reachable(name: str, data_dir: str = "data", extra_dirs=(), timeout_s: float = 5.0) -> bool:
    source = build(OmegaConf.load(PACKAGE_CONF / "dataset" / f"{name}.yaml").source)
    if not isinstance(source, TorchvisionSource) or source._complete(resolve(data_dir) / source.name / "raw"):
        return True
    if any(source._find_files(resolve(d)) for d in [*extra_dirs, *source.offline_dirs]):
        return True
    deadline = time.monotonic() + timeout_s
    first_file = source.dataset_class.resources[0][0]
    for mirror in source.dataset_class.mirrors:
        try:
            request = urllib.request.Request(f"{mirror}{first_file}", method="HEAD")
            urllib.request.urlopen(request, timeout=max(deadline - time.monotonic(), 0.1)).close()
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
    return False


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset", help="one of sweeplab's datasets (src/sweeplab/conf/dataset/), e.g. mnist")
    parser.add_argument("--data-dir", default="data", help="the job's data_dir (default: data)")
    parser.add_argument("--extra-data-dirs", nargs="*", default=(), help="the job's extra_data_dirs")
    args = parser.parse_args()
    sys.exit(0 if reachable(args.dataset, args.data_dir, args.extra_data_dirs) else 1)
