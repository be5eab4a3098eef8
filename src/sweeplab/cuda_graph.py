"""A training step replayed as one CUDA graph.

On a GPU, one step of a small network is a few dozen tiny kernels, and launching them one by one from Python takes
longer than running them. Captured once into a CUDA graph, the whole step (batch gather, forward, backward,
optimizer update, running metrics) is launched with a single call per batch.
"""
import logging
from typing import Callable

import torch

log = logging.getLogger(__name__)

WARMUP_STEPS = 3  # eager steps on a side stream before capture, as PyTorch's CUDA graph notes require


def prepare_optimizer(optimizer: torch.optim.Optimizer) -> None:
    """Adam-style optimizers keep their step count on the GPU only when capturable, which capture requires."""
    for group in optimizer.param_groups:
        if "capturable" in group:
            group["capturable"] = True


def step_for_full_batches(step: Callable[[torch.Tensor], None], batch_size: int, device: torch.device,
                          inputs: torch.Tensor, optimizers: list[torch.optim.Optimizer], enabled: bool,
                          augment: bool) -> Callable:
    """What runs each full batch: ``step`` replayed as a CUDA graph where one can be (on a GPU, inputs already on the
    device, no augmentation: a graph would replay one draw of its generator), else ``step`` itself."""
    if not (enabled and device.type == "cuda" and not augment and inputs.device == device):
        return step
    for optimizer in optimizers:
        prepare_optimizer(optimizer)
    return GraphedStep(step, batch_size, device)


class GraphedStep:
    """Runs ``step(index)`` for full batches: a few eager warm-up steps, then one capture, then replays.

    ``step`` must read its batch only through ``index`` and write results only into tensors that outlive the
    graph (parameters, optimizer state, running sums): a replay repeats exactly the captured kernels on the
    captured addresses. If capture fails (an optimizer or model that cannot be captured), steps stay eager.
    """

    def __init__(self, step: Callable[[torch.Tensor], None], batch_size: int, device: torch.device):
        self.step = step
        self.index = torch.empty(batch_size, dtype=torch.long, device=device)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.eager_steps = 0
        self.failed = False

    def __call__(self, index: torch.Tensor) -> None:
        if self.graph is not None:
            self.index.copy_(index)
            self.graph.replay()
        elif self.failed:
            self.step(index)
        elif self.eager_steps < WARMUP_STEPS:
            self._warm_up(index)
        else:
            self._capture()
            self(index)

    def _warm_up(self, index: torch.Tensor) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.step(index)
        torch.cuda.current_stream().wait_stream(side)
        self.eager_steps += 1

    def _capture(self) -> None:
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                self.step(self.index)  # capture records the kernels; nothing runs until replay
        except RuntimeError as error:
            self.failed = True
            log.warning("CUDA graph capture failed, training steps stay eager: %s", str(error).splitlines()[0])
            return
        self.graph = graph
        log.info("training step captured as a CUDA graph: one replay per full batch from here on")
