"""Log-mel spectrograms: ``torch.stft`` (Hann window, power 2) and an HTK mel filter bank, which together match
torchaudio's ``MelSpectrogram`` (torchaudio has no build for every torch release sweeplab supports)."""
import math
from dataclasses import asdict, dataclass

import torch

from sweeplab.errors import ConfigError


@dataclass(frozen=True)
class FeatureSettings:
    """How a recording becomes the network's input; every field is a ``dataset.`` key."""

    sample_rate: int = 8000
    duration_s: float = 1.0  # clips are cut or zero-padded to this length
    n_fft: int = 512
    hop_length: int = 256
    n_mels: int = 64
    log_offset: float = 1e-6  # log(mel + offset): keeps silence finite

    def __post_init__(self):
        for key in ("sample_rate", "n_fft", "hop_length", "n_mels"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"dataset.{key} must be an integer >= 1 (got {value!r})")
        for key in ("duration_s", "log_offset"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ConfigError(f"dataset.{key} must be a number > 0 (got {value!r})")
        if self.n_fft > self.clip_samples:
            raise ConfigError(
                f"dataset.n_fft={self.n_fft} is longer than the clip ({self.clip_samples} samples = dataset.duration_s "
                f"× dataset.sample_rate); lower dataset.n_fft or raise dataset.duration_s"
            )
        if self.hop_length > self.n_fft:
            raise ConfigError(f"dataset.hop_length={self.hop_length} skips samples; set it <= dataset.n_fft={self.n_fft}")
        if (mel_filters(self.n_fft, self.n_mels, self.sample_rate).sum(0) == 0).any():
            raise ConfigError(
                f"dataset.n_mels={self.n_mels} is more than dataset.n_fft={self.n_fft} supports (some mel bands hold "
                f"no frequency bin); use dataset.n_mels<={max_mels(self.n_fft, self.sample_rate)} or raise dataset.n_fft"
            )

    @property
    def clip_samples(self) -> int:
        return round(self.duration_s * self.sample_rate)

    @property
    def shape(self) -> tuple[int, int, int]:
        """[channels, mel bands, frames] of one clip's features (``center=True`` framing)."""
        return 1, self.n_mels, 1 + self.clip_samples // self.hop_length

    def as_dict(self) -> dict:
        return asdict(self)


def hz_to_mel(hz):
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def mel_filters(n_fft: int, n_mels: int, sample_rate: int) -> torch.Tensor:
    """Triangular HTK mel filters from 0 Hz to Nyquist, unnormalised: ``[n_fft // 2 + 1, n_mels]``."""
    freqs = torch.linspace(0, sample_rate // 2, n_fft // 2 + 1, dtype=torch.float64)
    mels = torch.linspace(0.0, hz_to_mel(sample_rate / 2), n_mels + 2, dtype=torch.float64)
    edges = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    widths = edges[1:] - edges[:-1]
    slopes = edges.unsqueeze(0) - freqs.unsqueeze(1)
    rising = -slopes[:, :-2] / widths[:-1]
    falling = slopes[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0).to(torch.float32)


def max_mels(n_fft: int, sample_rate: int) -> int:
    """The most mel bands that each still hold a frequency bin at this n_fft."""
    n_mels = 1
    while n_mels < n_fft and not (mel_filters(n_fft, n_mels + 1, sample_rate).sum(0) == 0).any():
        n_mels += 1
    return n_mels


def log_mel(clips: torch.Tensor, settings: FeatureSettings, chunk: int = 256) -> torch.Tensor:
    """``[N, samples]`` clips -> ``[N, 1, n_mels, frames]`` float32 log-mel power spectrograms."""
    window = torch.hann_window(settings.n_fft, device=clips.device)
    filters = mel_filters(settings.n_fft, settings.n_mels, settings.sample_rate).to(clips.device)
    out = []
    for part in clips.split(chunk):
        spectrum = torch.stft(part, settings.n_fft, settings.hop_length, window=window, center=True,
                              pad_mode="reflect", return_complex=True).abs().pow(2)
        mel = torch.matmul(spectrum.transpose(-1, -2), filters).transpose(-1, -2)
        out.append(torch.log(mel + settings.log_offset).unsqueeze(1))
    return torch.cat(out) if out else torch.empty(0, *settings.shape)
