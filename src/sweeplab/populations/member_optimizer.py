"""The member optimizer: one torch optimizer per member of a stack, over views of its slices of the stacked
parameters, so that any torch optimizer applies its own rule with each member's own values."""
from collections import defaultdict
from typing import Callable

import torch
from torch import nn

from sweeplab.populations.stack import Stack


class MemberOptimizer:
    """One torch optimizer per member, over views of its slices of the stacked parameters, with its own values.

    On a GPU the members' updates run side by side, each on a CUDA stream of its own: a small model's update is one
    kernel that keeps a few of the GPU's multiprocessors busy for tens of microseconds (measured on an H200: ~70 us
    for the notes' network), so K updates one after another would cost K times that."""

    def __init__(self, stack: Stack, make: Callable[[list[dict]], torch.optim.Optimizer], options: list[dict]):
        self.stack, self.make = stack, make
        self.views = self._views()
        self.optimizers = [make([{"params": views, **own}]) for views, own in zip(self.views, options)]
        self.streams = []
        self._add_streams()

    def _views(self) -> list[list[nn.Parameter]]:
        stacked = self.stack.stacked_parameters()
        return [[nn.Parameter(p.data[k]) for p in stacked] for k in range(self.stack.members)]

    def _add_streams(self) -> None:
        if self.stack.stacked_parameters()[0].device.type == "cuda" and len(self.optimizers) > 1:
            self.streams += [torch.cuda.Stream() for _ in range(len(self.optimizers) - len(self.streams))]

    def zero_grad(self) -> None:
        for p in self.stack.stacked_parameters():
            p.grad = None

    def step(self) -> None:
        stacked = self.stack.stacked_parameters()
        for k, views in enumerate(self.views):
            for view, p in zip(views, stacked):
                view.grad = p.grad[k]
        if not self.streams:
            for optimizer in self.optimizers:
                optimizer.step()
            return
        main = torch.cuda.current_stream()
        streams = self.streams[:len(self.optimizers)]
        for optimizer, stream in zip(self.optimizers, streams):
            stream.wait_stream(main)
            with torch.cuda.stream(stream):
                optimizer.step()
        for stream in streams:
            main.wait_stream(stream)

    def keep(self, members: list[int]) -> None:
        """After Stack.keep(members): the kept members' optimizers move to the new stacked parameters, state and all."""
        old = [self.views[k] for k in members]
        self.optimizers = [self.optimizers[k] for k in members]
        self._move(old)

    def extend(self, options: list[dict]) -> None:
        """After Stack.extend: the members' optimizers move to the new stacked parameters; newcomers get their own."""
        self._move(self.views)
        self.optimizers += [self.make([{"params": views, **own}])
                            for views, own in zip(self.views[len(self.optimizers):], options)]
        self._add_streams()

    def _move(self, old: list[list[nn.Parameter]]) -> None:
        self.views = self._views()
        for optimizer, before, after in zip(self.optimizers, old, self.views):
            optimizer.param_groups[0]["params"] = after
            state = defaultdict(dict)
            for b, a in zip(before, after):
                if b in optimizer.state:
                    state[a] = optimizer.state[b]
            optimizer.state = state
