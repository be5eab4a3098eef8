import torch
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


class CNN(nn.Module):
    """The series' audio network: four blocks Conv2d(k=3, stride 1, padding 2) -> ReLU -> MaxPool2d(2), then
    Flatten -> Linear -> LogSoftmax. The linear layer is sized by a dry forward pass over ``input_shape``
    ([channels, height, width]), so the same class takes spectrograms and images."""

    def __init__(self, input_shape, num_classes: int, channels=(16, 32, 64, 128), dropout: float = 0.0):
        super().__init__()
        _check_cnn_keys(input_shape, channels, dropout)
        blocks, previous = [], input_shape[0]
        for width in channels:
            blocks += [nn.Conv2d(previous, width, kernel_size=3, stride=1, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
            previous = width
        self.features = nn.Sequential(*blocks, nn.Flatten())
        with torch.no_grad():
            flat = self.features(torch.zeros(1, *input_shape)).shape[1]
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(flat, num_classes), nn.LogSoftmax(dim=1))

    def forward(self, inputs):
        return self.classifier(self.features(inputs))


def _check_cnn_keys(input_shape, channels, dropout) -> None:
    if len(input_shape) != 3:
        raise ConfigError(f"model=cnn needs inputs shaped [channels, height, width] (got {list(input_shape)}); "
                          f"use an image or spectrogram dataset")
    if not channels or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in channels):
        raise ConfigError(f"model.channels must be a list of integers >= 1, e.g. [16,32,64,128] (got {list(channels)})")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"model.dropout must be a number in [0, 1) (got {dropout!r})")
