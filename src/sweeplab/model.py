from torch import nn

from sweeplab.errors import ConfigError


class FeedForwardNet(nn.Module):
    """The notes' network: Flatten -> Linear -> ReLU -> Linear -> LogSoftmax (pair it with NLLLoss)."""

    def __init__(self, in_features: int, num_classes: int, width: int = 256):
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ConfigError(f"model.width must be an integer >= 1 (got {width!r}); e.g. model.width=256")
        super().__init__()
        self.flatten = nn.Flatten()
        self.dense = nn.Sequential(
            nn.Linear(in_features, width),
            nn.ReLU(),
            nn.Linear(width, num_classes),
        )
        self.log_softmax = nn.LogSoftmax(dim=1)

    def forward(self, images):
        return self.log_softmax(self.dense(self.flatten(images)))
