"""``hydra.sweeper.population=auto``: as many members as fill the device.

On a GPU, a stack's members cost memory, not time, until the device is busy (docs/populations.md: per trial-epoch,
stacks of 8 / 32 / 128 / 512 ran 5.5× / 10.6× / 16.9× / 24.1× faster than a lone trial on an H200), so K is what fits
in a share of the free memory: each member holds its weights, their gradients and two optimizer moments, and per
sample of its batch the activations its forward keeps for the backward. On a CPU a stack saves only per-step
overhead, and a population of four was the measured gain (1.33× on a 2-core CPU). Either way K stays within a
sixteenth of the study, so that the sampler learns from results between rounds.
"""
from dataclasses import replace

import torch
from torch import nn

CPU_POPULATION = 4
MAX_POPULATION = 512  # the largest stack measured; beyond it one more slot side by side is the better use
MEMORY_SHARE = 0.5  # of the free memory: the rest for evaluation batches, CUDA graphs and the data
ROUNDS = 16  # a study runs in at least this many populations' worth of trials


def activation_elements(model: nn.Module, sample: torch.Tensor) -> int:
    """The elements one sample's forward produces in the model's layers (what autograd keeps, at most)."""
    total = 0

    def count(_module, _inputs, output):
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output[0].numel()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            model(sample[:1])
    finally:
        for handle in handles:
            handle.remove()
    return total


def members_that_fit(model: nn.Module, sample: torch.Tensor, batch_size: int, free_bytes: int, slots: int = 1) -> int:
    """K for one of ``slots`` populations sharing a device with ``free_bytes`` free (4-byte floats throughout)."""
    parameters = sum(p.numel() for p in model.parameters())
    per_sample = activation_elements(model, sample) + sample[0].numel()
    per_member = 4 * (4 * parameters + 2 * batch_size * per_sample)  # the activations and their gradients
    fit = int(MEMORY_SHARE * free_bytes / max(1, slots)) // per_member
    return max(1, min(MAX_POPULATION, fit))


def auto_population(config, batch_size: int, slots: int, n_trials: int) -> int:
    """K for the job ``config`` describes: CPU_POPULATION on a CPU; on a GPU, what fits its free memory at the
    largest ``batch_size`` the search may ask for, for each of ``slots`` populations side by side. Either way at most
    1/ROUNDS of the study: the sampler learns from each round's results before it proposes the next."""
    return min(_fitting_population(config, batch_size, slots), max(2, n_trials // ROUNDS))


def _fitting_population(config, batch_size: int, slots: int) -> int:
    from sweeplab.building import build_model
    from sweeplab.data.loading import data_facts, load_data
    from sweeplab.settings import JobSettings

    settings = JobSettings.from_config(config)
    if settings.device.type != "cuda":
        return CPU_POPULATION
    splits, data = load_data(config, replace(settings, device=torch.device("cpu")))
    model = build_model(config.model, data_facts(data))
    free, _ = torch.cuda.mem_get_info(settings.device)
    return members_that_fit(model, splits.train[0][:1].float(), batch_size, free, slots)
