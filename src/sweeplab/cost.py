"""What one training costs: wall time, median epoch, throughput, peak memory and optimizer steps per epoch.

Timing on a shared machine is noisy (other processes take the cores): a sweep's confirmation measures it again on
fresh seeds, and reports it as a mean with its standard error.

Peak memory: on a CUDA device, ``torch.cuda.max_memory_allocated`` during training (the peak is reset when training
starts, so it holds the data splits on the device, the model, the optimizer's state and the activations). On the CPU,
the rise of the process's resident memory during training: on Linux its peak (``VmHWM``, reset when training starts
through /proc/self/clear_refs) minus its resident memory then (``VmRSS``), so it is what training added on top of
the data and model already loaded, whatever earlier jobs of the same process held. Where that reset is not
available, the rise of the process's lifetime peak (``getrusage``'s ``ru_maxrss``): 0 when the process had peaked
before, e.g. in an earlier job of the same process.
"""
import math
import re
import resource
import statistics
import sys
import time

import torch


class CostMeter:
    """Wrap one training (``with CostMeter(device) as meter: fit(...)``), then ``meter.costs(...)``."""

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self.started = self.wall_s = None
        self._rss_before = 0
        self._high_water = False  # the kernel's peak was reset: read it, not getrusage's lifetime peak

    def __enter__(self) -> "CostMeter":
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._high_water = _reset_high_water()
            self._rss_before = _status_kb("VmRSS") * 1024 if self._high_water else _peak_rss_bytes()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.wall_s = time.perf_counter() - self.started

    def peak_memory_mb(self) -> float:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        peak = _status_kb("VmHWM") * 1024 if self._high_water else _peak_rss_bytes()
        return max(0, peak - self._rss_before) / 2**20

    def costs(self, epoch_times: list[float], train_samples: int, batch_size: int) -> dict[str, float]:
        """The training's costs by name (sweeplab.objective.COST_METRICS)."""
        return {
            "train_time_s": self.wall_s,
            "epoch_time_s": statistics.median(epoch_times),
            "samples_per_s": train_samples * len(epoch_times) / self.wall_s if self.wall_s else float("nan"),
            "peak_memory_mb": self.peak_memory_mb(),
            "steps_per_epoch": math.ceil(train_samples / batch_size),
        }


def _reset_high_water() -> bool:
    """Reset the kernel's record of this process's peak resident memory (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        return True
    except OSError:
        return False


def _status_kb(key: str) -> int:
    with open("/proc/self/status") as file:
        return int(re.search(rf"^{key}:\s+(\d+) kB", file.read(), re.M).group(1))


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports kilobytes, macOS bytes
