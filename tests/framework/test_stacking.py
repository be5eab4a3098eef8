"""Populations at the level of the training loop: a stack of K members trains each member exactly as its own
training would (same per-epoch curves, same best weights), drops a member that is pruned or whose loss turns NaN
without touching the others, and refuses models it cannot stack, saying why."""
import functools

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from sweeplab.data import make_splits
from sweeplab.model import CNN, FeedForwardNet
from sweeplab.populations.fit import fit_population
from sweeplab.populations.member_optimizer import MemberOptimizer
from sweeplab.populations.stack import NotStackable, Stack, check_same_outputs
from sweeplab.training import fit
from tests.framework.user_models import BatchNormNet, TinyLogitsNet

EPOCHS, BATCH = 3, 32


@pytest.fixture(scope="module")
def splits():
    digits = load_digits()
    images = torch.from_numpy(digits.images).float().div(16).unsqueeze(1)
    labels = torch.from_numpy(digits.target).long()
    return make_splits((images[:1400], labels[:1400]), (images[1400:], labels[1400:]), 300, seed=3)


BUILDERS = {
    "ffn": (lambda: FeedForwardNet(64, 10, width=32), nn.NLLLoss()),
    "cnn": (lambda: CNN([1, 8, 8], 10, channels=(4, 8)), nn.NLLLoss()),
    "user_logits": (lambda: TinyLogitsNet([1, 8, 8], 10, hidden=16), nn.CrossEntropyLoss(label_smoothing=0.1)),
}


def member(builder, seed: int, inputs) -> nn.Module:
    torch.manual_seed(seed)
    model = builder()
    model(inputs[:2])  # materialises lazy layers, as the job's output check does
    return model


def solo(builder, loss_fn, splits, seed, optimizer_cls, lr):
    model = member(builder, seed, splits.train[0])
    return fit(model, optimizer_cls(model.parameters(), lr=lr), splits, epochs=EPOCHS, batch_size=BATCH, seed=seed,
               progress=False, loss_fn=loss_fn)


def population(builder, loss_fn, splits, seeds, optimizer_cls, lrs, on_epoch=lambda k, metrics: None):
    stack = Stack([member(builder, s, splits.train[0]) for s in seeds])
    optimizer = MemberOptimizer(stack, functools.partial(optimizer_cls, lr=lrs[0]), [{"lr": lr} for lr in lrs])
    histories, stopped = fit_population(stack, optimizer, splits, epochs=EPOCHS, batch_size=BATCH, seeds=seeds,
                                        on_epoch=on_epoch, loss_fn=loss_fn, progress=False)
    return stack, histories, stopped


def assert_same_training(ours, theirs):
    """Equal within float noise: batched products sum in another order, and in a CNN a max-pool tie decided by the
    last bit can move a loss by ~1e-3 for an epoch (measured: every other difference is below 1e-6).
    (The stack's own outputs equal its members' to 1e-5: test_stacked_forward_equals_members.)"""
    assert len(ours.epochs) == len(theirs.epochs)
    for a, b in zip(ours.epochs, theirs.epochs):
        assert a.val_loss == pytest.approx(b.val_loss, rel=1e-2)
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-2)
        assert a.val_accuracy == pytest.approx(b.val_accuracy, abs=3 / 300)  # at most three images of 300 flip
    for name, tensor in theirs.best_state.items():  # Adam magnifies those last bits a little, epoch by epoch
        assert (ours.best_state[name] - tensor).norm() <= 0.05 * tensor.norm(), name


@pytest.mark.parametrize("name", BUILDERS)
@pytest.mark.parametrize("seeds", [[7, 7, 7], [7, 8, 9]], ids=["one seed", "own seeds"])
def test_each_member_trains_as_it_would_alone(splits, name, seeds):
    builder, loss_fn = BUILDERS[name]
    lrs = [3e-3, 1e-2, 3e-2]
    _, histories, stopped = population(builder, loss_fn, splits, seeds, torch.optim.Adam, lrs)
    assert stopped == {}
    for k, (seed, lr) in enumerate(zip(seeds, lrs)):
        assert_same_training(histories[k], solo(builder, loss_fn, splits, seed, torch.optim.Adam, lr))
    assert histories[0].best.val_accuracy != histories[2].best.val_accuracy  # the members really differ


def test_stacked_forward_equals_members(splits):
    for builder, _ in BUILDERS.values():
        models = [member(builder, s, splits.train[0]) for s in (1, 2)]
        check_same_outputs(Stack(models), models, splits.train[0][:5], tolerance=1e-5)  # raises if they differ


def test_a_pruned_member_leaves_the_stack_and_the_others_go_on(splits):
    builder, loss_fn = BUILDERS["ffn"]

    class Pruned(Exception):
        pass

    def on_epoch(k, metrics):
        if k == 1 and metrics.epoch == 1:
            raise Pruned("pruned after epoch 1")

    stack, histories, stopped = population(builder, loss_fn, splits, [7, 7, 7], torch.optim.SGD, [0.05, 0.1, 0.2],
                                           on_epoch)
    assert list(stopped) == [1] and isinstance(stopped[1], Pruned)
    assert len(histories[1].epochs) == 1
    assert stack.members == 2  # it stopped costing compute
    for k, lr in ((0, 0.05), (2, 0.2)):
        assert_same_training(histories[k], solo(builder, loss_fn, splits, 7, torch.optim.SGD, lr))


def test_a_member_whose_loss_turns_nan_fails_alone(splits):
    builder, loss_fn = BUILDERS["ffn"]
    stack, histories, stopped = population(builder, loss_fn, splits, [7, 7, 7], torch.optim.SGD, [0.1, 1e12, 0.05])
    assert list(stopped) == [1]
    assert "training loss became nan" in str(stopped[1]) and "optimizer.lr" in str(stopped[1])
    assert stack.members == 2
    for k, lr in ((0, 0.1), (2, 0.05)):
        assert_same_training(histories[k], solo(builder, loss_fn, splits, 7, torch.optim.SGD, lr))


def test_reserves_step_in_where_members_leave_and_train_as_alone(splits):
    builder, loss_fn = BUILDERS["ffn"]
    seeds, lrs = [7, 8, 9, 10], [0.05, 0.1, 0.2, 0.08]
    models = [member(builder, s, splits.train[0]) for s in seeds]
    stack = Stack(models[:2])
    optimizer = MemberOptimizer(stack, functools.partial(torch.optim.SGD, lr=lrs[0]), [{"lr": lr} for lr in lrs[:2]])
    widths, reports = [], []

    class Pruned(Exception):
        pass

    def on_epoch(k, metrics):
        widths.append(stack.members)
        reports.append((k, metrics.epoch))
        if k == 1 and metrics.epoch == 1:
            raise Pruned("pruned after epoch 1")

    histories, stopped = fit_population(
        stack, optimizer, splits, epochs=EPOCHS, batch_size=BATCH, seeds=seeds, on_epoch=on_epoch, loss_fn=loss_fn,
        progress=False, reserves=[(m, {"lr": lr}) for m, lr in zip(models[2:], lrs[2:])])
    assert list(stopped) == [1]
    assert widths == [2] * 8 + [1] * 2  # full while reserves waited; the last member's last epochs alone
    # member 2 took pruned member 1's place after epoch 1; member 3 took member 0's after its last epoch
    assert reports == [(0, 1), (1, 1), (0, 2), (2, 1), (0, 3), (2, 2), (2, 3), (3, 1), (3, 2), (3, 3)]
    for k in (0, 2, 3):
        assert_same_training(histories[k], solo(builder, loss_fn, splits, seeds[k], torch.optim.SGD, lrs[k]))


class MixesTheBatch(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(64, 10)

    def forward(self, x):
        x = x.flatten(1)
        return self.linear(x - x.mean(0))  # each output depends on the whole batch


def test_models_it_cannot_stack_are_refused_with_the_reason(splits):
    with pytest.raises(NotStackable, match="BatchNorm1d"):
        Stack([BatchNormNet(64, 10), BatchNormNet(64, 10)])
    models = [MixesTheBatch(), MixesTheBatch()]
    with pytest.raises(NotStackable, match="mixes the samples of a batch"):
        check_same_outputs(Stack(models), models, splits.train[0][:5])
