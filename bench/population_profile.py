"""Where a stacked training step's time goes: time per step of stacks of 1, 4 and 8 (the notes' network, batch 16
and 128, graph replays and eager steps), then the torch profiler's kernel table for 20 steps of stacks of 1 and 8.

    python bench/population_profile.py        # on a GPU; on a CPU the same, with no graphs and batch 16 only
"""
import functools
import time

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from sweeplab.model import FeedForwardNet
from sweeplab.populations.fit import _per_sample, _Steps
from sweeplab.populations.member_optimizer import MemberOptimizer
from sweeplab.populations.stack import Stack

CUDA = torch.cuda.is_available()
DEVICE = torch.device("cuda", 0) if CUDA else torch.device("cpu")  # a parameter's device names its index
sync = torch.cuda.synchronize if CUDA else (lambda: None)


def steps_of(members: int, batch_size: int, graph: bool, images, labels) -> _Steps:
    stack = Stack([FeedForwardNet(784, 10).to(DEVICE) for _ in range(members)])
    optimizer = MemberOptimizer(stack, functools.partial(torch.optim.Adam, fused=True), [{"lr": 1e-3}] * members)
    steps = _Steps(stack, optimizer, images, labels, _per_sample(nn.NLLLoss()), None, None, DEVICE)
    steps.start(list(range(members)), batch_size, graph=graph)
    return steps


def per_step_us(steps: _Steps, index: torch.Tensor, count: int = 300) -> float:
    for _ in range(10):  # warm-up, and the graph's capture
        steps(index)
    sync()
    started = time.perf_counter()
    for _ in range(count):
        steps(index)
    sync()
    return (time.perf_counter() - started) / count * 1e6


def main() -> None:
    torch.manual_seed(0)
    images = torch.rand(54000, 1, 28, 28, device=DEVICE)
    labels = torch.randint(0, 10, (54000,), device=DEVICE)
    print(f"Device: {torch.cuda.get_device_name() if CUDA else 'CPU'} (torch {torch.__version__})\n")
    print("| batch | members | per step | per member-step | eager per step |")
    print("|---|---|---|---|---|")
    for batch_size in (16, 128) if CUDA else (16,):
        for members in (1, 4, 8):
            index = torch.randint(0, len(labels), (members * batch_size,), device=DEVICE)
            graphed = per_step_us(steps_of(members, batch_size, CUDA, images, labels), index)
            eager = per_step_us(steps_of(members, batch_size, False, images, labels), index) if CUDA else graphed
            print(f"| {batch_size} | {members} | {graphed:.0f} µs | {graphed / members:.0f} µs | {eager:.0f} µs |",
                  flush=True)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if CUDA else [])
    for members in (1, 8):
        steps = steps_of(members, 16, CUDA, images, labels)
        index = torch.randint(0, len(labels), (members * 16,), device=DEVICE)
        per_step_us(steps, index, count=10)
        with profile(activities=activities) as profiled:
            for _ in range(20):
                steps(index)
            sync()
        print(f"\n{members} member(s), 20 steps of batch 16:")
        print(profiled.key_averages().table(sort_by="cuda_time_total" if CUDA else "cpu_time_total", row_limit=12,
                                            max_name_column_width=60))


if __name__ == "__main__":
    main()
