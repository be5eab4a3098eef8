"""Ctrl-C and SIGTERM are never lost: a signal whose KeyboardInterrupt lands in a finalizer, where Python prints
"Exception ignored" and drops it, still stops training at the next epoch (a sweep once ran to its end after a Ctrl-C
that landed in tqdm's __del__)."""
import os
import signal
import sys

import pytest
import torch
from sklearn.datasets import load_digits

from sweeplab import interrupts
from sweeplab.data import make_splits
from sweeplab.model import FeedForwardNet
from sweeplab.populations.fit import fit_population
from sweeplab.populations.member_optimizer import MemberOptimizer
from sweeplab.populations.stack import Stack
from sweeplab.training import fit


@pytest.fixture
def installed():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    interrupts.install()
    yield
    interrupts._received.clear()
    for signum, handler in before.items():
        signal.signal(signum, handler)


@pytest.fixture(scope="module")
def splits():
    digits = load_digits()
    images = torch.from_numpy(digits.images[:400]).float().div(16).unsqueeze(1)
    labels = torch.from_numpy(digits.target[:400]).long()
    return make_splits((images, labels), (images[:50], labels[:50]), 50, seed=0)


class SignalsWhileFinalized:
    def __init__(self, signum):
        self.signum = signum

    def __del__(self):
        os.kill(os.getpid(), self.signum)  # the handler runs here, inside the finalizer


def swallow(signum, monkeypatch) -> list:
    """Deliver ``signum`` inside a finalizer; return what Python dropped there."""
    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: dropped.append(unraisable.exc_type))
    finalized = SignalsWhileFinalized(signum)
    del finalized
    return dropped


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_dropped_by_a_finalizer_still_stops_training(installed, splits, monkeypatch, signum):
    assert swallow(signum, monkeypatch) == [KeyboardInterrupt]  # Python dropped it
    model = FeedForwardNet(64, 10, width=16)
    epochs = []
    with pytest.raises(KeyboardInterrupt):
        fit(model, torch.optim.SGD(model.parameters(), lr=0.1), splits, epochs=3, batch_size=32, seed=0,
            progress=False, on_epoch=epochs.append)
    assert epochs == []
    assert interrupts.received() == signum and interrupts.EXIT_CODES[signum] == {"SIGINT": 130, "SIGTERM": 143}[
        signum.name]


def test_a_population_stops_too(installed, splits, monkeypatch):
    assert swallow(signal.SIGINT, monkeypatch) == [KeyboardInterrupt]
    stack = Stack([FeedForwardNet(64, 10, width=16) for _ in range(2)])
    optimizer = MemberOptimizer(stack, lambda groups: torch.optim.SGD(groups, lr=0.1), [{"lr": 0.1}, {"lr": 0.01}])
    epochs = []
    with pytest.raises(KeyboardInterrupt):
        fit_population(stack, optimizer, splits, epochs=3, batch_size=32, seeds=[0, 1], progress=False,
                       on_epoch=lambda k, metrics: epochs.append(k))
    assert epochs == []


def test_a_sigint_ignored_by_whoever_started_us_stays_ignored():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # as a script's background job starts
        interrupts.install()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGTERM) is interrupts._on_signal
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
