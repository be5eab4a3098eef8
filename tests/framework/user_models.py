"""Models as a user would write them in their own package: sweeplab knows nothing of these classes."""
from torch import nn


class TinyLogitsNet(nn.Module):
    """Asks for the data's facts it needs by naming them; emits logits (pair it with loss=cross_entropy)."""

    def __init__(self, input_shape, num_classes: int, hidden: int = 32):
        super().__init__()
        if hidden < 1:
            raise ValueError(f"hidden must be positive, got {hidden}")
        self.seen_shape = tuple(input_shape)
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.net(x)


class NoFactsNet(nn.Module):
    """Takes none of the data's facts: sweeplab must not force them on it."""

    def __init__(self, outputs: int = 10):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(outputs), nn.LogSoftmax(dim=1))

    def forward(self, x):
        return self.net(x)


class WrongClassesNet(NoFactsNet):
    def __init__(self):
        super().__init__(outputs=3)


class BatchNormNet(nn.Module):
    """Batch normalisation keeps running statistics: sweeplab cannot stack it, so a population trains it one member
    at a time."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, 32), nn.BatchNorm1d(32), nn.ReLU(),
                                 nn.Linear(32, num_classes), nn.LogSoftmax(dim=1))

    def forward(self, x):
        return self.net(x)
