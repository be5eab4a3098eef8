"""Read 16-bit PCM WAV files with the standard library, checking them against what the config expects."""
import wave
from pathlib import Path

import numpy as np
import torch

from sweeplab.errors import DataError


def read_wav(path: Path, sample_rate: int) -> torch.Tensor:
    """A mono WAV as float32 samples in [-1, 1); DataError names the file and the fix for anything else."""
    try:
        with wave.open(str(path), "rb") as file:
            channels, width, rate, frames = (
                file.getnchannels(), file.getsampwidth(), file.getframerate(), file.getnframes()
            )
            data = file.readframes(frames)
    except (wave.Error, EOFError) as error:
        raise DataError(f"{path} is not a readable WAV file ({error}); replace it or remove it") from None
    except OSError as error:
        raise DataError(f"cannot read {path} ({error.strerror}); check the file") from None
    if width != 2:
        raise DataError(f"{path} holds {8 * width}-bit samples; convert it to 16-bit PCM")
    if channels != 1:
        raise DataError(f"{path} has {channels} channels; convert it to mono (the spoken-digit source reads mono only)")
    if rate != sample_rate:
        raise DataError(
            f"{path} is sampled at {rate} Hz but dataset.sample_rate={sample_rate}; "
            f"set dataset.sample_rate={rate} or resample the file"
        )
    if len(data) != frames * width or frames == 0:
        raise DataError(f"{path} is truncated ({len(data) // width} of {frames} samples); replace the file")
    return torch.from_numpy(np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0)


def fit_length(samples: torch.Tensor, length: int) -> torch.Tensor:
    """Cut to ``length`` samples or pad the end with zeros, as the series does."""
    if len(samples) >= length:
        return samples[:length]
    return torch.nn.functional.pad(samples, (0, length - len(samples)))
