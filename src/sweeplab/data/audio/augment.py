"""Per-batch augmentation of spectrograms on the device: a random time shift and SpecAugment-style masks.

Each sample of a batch draws its own shift and mask positions from the generator that training passes in, so a
seeded job sees the same augmented batches on every run.
"""
from dataclasses import dataclass

import torch

from sweeplab.errors import ConfigError


@dataclass(frozen=True)
class SpecAugment:
    """Widths in frames (time) and mel bands (frequency); 0 turns a transform off."""

    time_shift: int = 0  # shift each clip by up to ± this many frames (wrapping around)
    time_mask: int = 0  # blank up to this many consecutive frames
    freq_mask: int = 0  # blank up to this many consecutive mel bands

    def __post_init__(self):
        for key in ("time_shift", "time_mask", "freq_mask"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"dataset.augment.{key} must be an integer >= 0 (got {value!r}); 0 turns it off")

    @property
    def enabled(self) -> bool:
        return bool(self.time_shift or self.time_mask or self.freq_mask)

    def check(self, shape: tuple[int, ...]) -> None:
        _, bands, frames = shape
        for key, limit, what in (("time_shift", frames - 1, "frames"), ("time_mask", frames, "frames"),
                                 ("freq_mask", bands, "mel bands")):
            if getattr(self, key) > limit:
                raise ConfigError(f"dataset.augment.{key}={getattr(self, key)} exceeds the {limit} {what} of a clip; lower it")

    def __call__(self, inputs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``[B, 1, bands, frames]`` -> the same shape, each sample shifted and masked on its own."""
        count, _, bands, frames = inputs.shape
        if self.time_shift:
            shifts = _draw(-self.time_shift, self.time_shift, count, generator, inputs.device)
            columns = (torch.arange(frames, device=inputs.device) - shifts[:, None]) % frames
            inputs = inputs.gather(3, columns[:, None, None, :].expand_as(inputs))
        fill = inputs.mean()
        if self.time_mask:
            inputs = inputs.masked_fill(_span(self.time_mask, frames, count, generator, inputs.device)[:, None, None, :], fill)
        if self.freq_mask:
            inputs = inputs.masked_fill(_span(self.freq_mask, bands, count, generator, inputs.device)[:, None, :, None], fill)
        return inputs


def _draw(low: int, high: int, count: int, generator: torch.Generator, device) -> torch.Tensor:
    return torch.randint(low, high + 1, (count,), generator=generator, device=device)


def _span(max_width: int, size: int, count: int, generator: torch.Generator, device) -> torch.Tensor:
    """A ``[count, size]`` mask with one run of 0..max_width True entries per row."""
    widths = _draw(0, max_width, count, generator, device)
    starts = (torch.rand(count, generator=generator, device=device) * (size - widths + 1)).long()
    positions = torch.arange(size, device=device)
    return (positions >= starts[:, None]) & (positions < (starts + widths)[:, None])
