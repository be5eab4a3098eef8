"""On a GPU, training steps replay one CUDA graph: the same weights and metrics as launching them one by one.

These need CUDA and are skipped without it; they were run on a lent GPU machine (docs/benchmarks.md)."""
import logging

import pytest
import torch

from sweeplab.data import Splits
from sweeplab.model import FeedForwardNet
from sweeplab.training import fit

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def random_splits(count: int) -> Splits:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(count, 1, 28, 28, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    return Splits(train=(images, labels), val=(images[:256], labels[:256]), test=(images[:256], labels[:256]))


def train(splits: Splits, cuda_graph: bool, optimizer: str):
    torch.manual_seed(0)
    model = FeedForwardNet(784, 10, 64).cuda()
    make = {"adam": lambda p: torch.optim.Adam(p, lr=1e-3, fused=True),
            "sgd": lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, fused=True)}[optimizer]
    history = fit(model, make(model.parameters()), splits.to(torch.device("cuda")), epochs=3, batch_size=64, seed=1,
                  progress=False, cuda_graph=cuda_graph)
    return model, history


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_graph_steps_match_eager_steps(optimizer, caplog):
    splits = random_splits(1000)  # 15 full batches and a short one per epoch: both paths every epoch
    eager_model, eager = train(splits, False, optimizer)
    with caplog.at_level(logging.INFO, logger="sweeplab.cuda_graph"):
        graph_model, graphed = train(splits, True, optimizer)
    assert "captured as a CUDA graph" in caplog.text
    for a, b in zip(eager.epochs, graphed.epochs):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5)
        assert a.train_accuracy == b.train_accuracy and a.val_accuracy == b.val_accuracy
    for name, value in eager_model.state_dict().items():
        torch.testing.assert_close(graph_model.state_dict()[name], value, rtol=1e-5, atol=1e-6)


class Pruned(Exception):
    pass


def stack_and_lone(network: str):
    from sweeplab.model import CNN

    build = {"ffn": lambda: FeedForwardNet(784, 10, 64), "cnn": lambda: CNN([1, 28, 28], 10, channels=(4, 8))}[network]

    def member():
        torch.manual_seed(0)
        return build().cuda()

    return member


def lone_history(member, splits, lr, epochs):
    alone = member()
    return fit(alone, torch.optim.Adam(alone.parameters(), lr=lr, fused=True), splits, epochs=epochs, batch_size=64,
               seed=1, progress=False)


@pytest.mark.parametrize("network", ["ffn", "cnn"])
def test_a_stack_on_the_gpu_trains_each_member_as_alone(network, caplog):
    """Populations on CUDA: batched products and grouped convolutions there (TF32 convolutions included), each step
    one CUDA graph replay, must still give each member its lone training's curve; a member pruned after epoch 1
    leaves, and the others' steps are captured again on the smaller stack."""
    import functools

    from sweeplab.populations.fit import fit_population
    from sweeplab.populations.member_optimizer import MemberOptimizer
    from sweeplab.populations.stack import Stack, check_same_outputs

    splits = random_splits(1000).to(torch.device("cuda"))
    member = stack_and_lone(network)
    lrs = [1e-3, 3e-3, 1e-2]
    models = [member() for _ in lrs]
    stack = Stack(models)
    check_same_outputs(stack, models, splits.train[0][:8])
    optimizer = MemberOptimizer(stack, functools.partial(torch.optim.Adam, fused=True), [{"lr": lr} for lr in lrs])

    def on_epoch(k, metrics):
        if k == 1 and metrics.epoch == 1:
            raise Pruned()

    with caplog.at_level(logging.INFO, logger="sweeplab.cuda_graph"):
        stacked, stopped = fit_population(stack, optimizer, splits, epochs=3, batch_size=64, seeds=[1] * len(lrs),
                                          on_epoch=on_epoch, progress=False)
    assert caplog.text.count("captured as a CUDA graph") == 2  # 3 members, then 2
    assert list(stopped) == [1] and isinstance(stopped[1], Pruned)
    assert len(stacked[1].epochs) == 1
    for k, lr in enumerate(lrs):
        lone = lone_history(member, splits, lr, epochs=3)
        for a, b in zip(stacked[k].epochs, lone.epochs):
            assert a.val_loss == pytest.approx(b.val_loss, rel=1e-2)
