"""population=auto on a GPU: K is what fits a share of the free memory, counted from the model's parameters (weights,
gradients, two optimizer moments) and the activations one sample's forward produces, at the largest batch size."""
import torch

from sweeplab.model import FeedForwardNet
from sweeplab.populations.size import (CPU_POPULATION, MAX_POPULATION, activation_elements, auto_population,
                                       members_that_fit)
from tests.helpers import compose

GIB = 2 ** 30


def test_members_that_fit_the_notes_network():
    model = FeedForwardNet(784, 10)  # 784-256-10: 203 530 parameters
    sample = torch.rand(1, 784)
    assert activation_elements(model, sample) == 784 + 256 + 256 + 10 + 10  # flatten, linear, relu, linear, softmax
    per_member = 4 * (4 * 203_530 + 2 * 512 * (1316 + 784))
    assert members_that_fit(model, sample, 512, 2 * GIB) == GIB // per_member == 90
    assert members_that_fit(model, sample, 512, 2 * GIB, slots=2) == 45  # two populations share the device
    assert members_that_fit(model, sample, 16, 2 * GIB) > 90  # smaller batches, more members
    assert members_that_fit(model, sample, 512, 1000 * GIB) == MAX_POPULATION
    assert members_that_fit(model, sample, 512, 1) == 1


def test_auto_on_a_cpu_is_four_within_a_sixteenth_of_the_study():
    cfg = compose("dataset=digits", "device=cpu")
    assert auto_population(cfg, 512, slots=1, n_trials=1000) == CPU_POPULATION == 4
    assert auto_population(cfg, 512, slots=1, n_trials=40) == 2  # 40 trials: K at most 40 // 16, and 2 at least
