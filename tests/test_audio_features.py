"""Log-mel features against an independent NumPy implementation, their settings' checks, augmentation, the CNN."""
import wave

import numpy as np
import pytest
import torch

from tests.helpers import FSDD, needs_fsdd
from sweeplab.data.audio.augment import SpecAugment
from sweeplab.data.audio.features import FeatureSettings, log_mel
from sweeplab.data.audio.wav import fit_length, read_wav
from sweeplab.errors import ConfigError
from sweeplab.model import CNN


def numpy_log_mel(samples: np.ndarray, rate: int, n_fft: int, hop: int, n_mels: int, offset: float) -> np.ndarray:
    """Written from the definitions: reflect-padded frames × periodic Hann, |rfft|², HTK triangles built with
    np.interp over the bin frequencies, log."""
    padded = np.pad(samples.astype(np.float64), n_fft // 2, mode="reflect")
    count = 1 + (len(padded) - n_fft) // hop
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([padded[i * hop: i * hop + n_fft] * hann for i in range(count)])
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # [frames, bins]
    to_mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = 700 * (10 ** (np.linspace(0, to_mel(rate / 2), n_mels + 2) / 2595) - 1)
    bins = np.linspace(0, rate / 2, n_fft // 2 + 1)
    bank = np.stack([np.interp(bins, edges[m:m + 3], [0, 1, 0]) for m in range(n_mels)])  # [mels, bins]
    return np.log(bank @ power.T + offset)


@needs_fsdd
@pytest.mark.parametrize("n_fft, hop, n_mels", [(512, 128, 64), (256, 64, 40)])
def test_log_mel_matches_an_independent_numpy_reference_on_a_real_recording(n_fft, hop, n_mels):
    path = FSDD / "recordings" / "7_jackson_3.wav"
    with wave.open(str(path)) as file:
        raw = np.frombuffer(file.readframes(file.getnframes()), dtype="<i2") / 32768.0
    settings = FeatureSettings(n_fft=n_fft, hop_length=hop, n_mels=n_mels, duration_s=1.0)
    clip = np.zeros(8000)
    clip[: min(len(raw), 8000)] = raw[:8000]
    expected = numpy_log_mel(clip, 8000, n_fft, hop, n_mels, settings.log_offset)
    ours = log_mel(fit_length(read_wav(path, 8000), 8000)[None], settings)[0, 0].double().numpy()
    assert ours.shape == expected.shape == settings.shape[1:]
    loud = expected > np.log(1e-3)  # where the signal is: relative error in power is what float32 can hold
    np.testing.assert_allclose(np.exp(ours[loud]), np.exp(expected[loud]), rtol=1e-4)
    np.testing.assert_allclose(ours, expected, atol=2e-3)


@pytest.mark.parametrize("keys, message", [
    ({"n_fft": 16000}, "dataset.n_fft=16000 is longer than the clip (8000 samples"),
    ({"n_mels": 128, "n_fft": 256}, "dataset.n_mels=128 is more than dataset.n_fft=256 supports"),
    ({"n_mels": 0}, "dataset.n_mels must be an integer >= 1 (got 0)"),
    ({"hop_length": -5}, "dataset.hop_length must be an integer >= 1 (got -5)"),
    ({"duration_s": 0}, "dataset.duration_s must be a number > 0 (got 0)"),
    ({"log_offset": -1.0}, "dataset.log_offset must be a number > 0"),
    ({"hop_length": 1024}, "dataset.hop_length=1024 skips samples"),
])
def test_feature_settings_that_cannot_work_are_refused(keys, message):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        FeatureSettings(**keys)


def test_n_mels_message_names_the_most_that_fits():
    with pytest.raises(ConfigError) as error:
        FeatureSettings(n_mels=128, n_fft=256)
    most = int(str(error.value).split("dataset.n_mels<=")[1].split()[0])
    FeatureSettings(n_mels=most, n_fft=256)
    with pytest.raises(ConfigError):
        FeatureSettings(n_mels=most + 1, n_fft=256)


def test_augmentation_is_seeded_per_sample_and_keeps_the_shape():
    batch = torch.randn(8, 1, 32, 40)
    augment = SpecAugment(time_shift=4, time_mask=6, freq_mask=5)
    first = augment(batch, torch.Generator().manual_seed(1))
    again = augment(batch, torch.Generator().manual_seed(1))
    other = augment(batch, torch.Generator().manual_seed(2))
    assert first.shape == batch.shape and torch.equal(first, again) and not torch.equal(first, other)
    assert not torch.equal(first[0], first[1] - batch[1] + batch[0])  # samples differ in their draws
    assert not SpecAugment().enabled
    with pytest.raises(ConfigError, match="dataset.augment.freq_mask=40 exceeds the 32 mel bands"):
        SpecAugment(freq_mask=40).check((1, 32, 40))
    with pytest.raises(ConfigError, match=r"dataset.augment.time_mask must be an integer >= 0 \(got -1\)"):
        SpecAugment(time_mask=-1)


@pytest.mark.parametrize("shape, flat", [((1, 64, 63), 128 * 5 * 5), ((1, 28, 28), 128 * 3 * 3), ((3, 32, 32), 128 * 3 * 3)])
def test_cnn_sizes_its_linear_layer_from_the_input_shape(shape, flat):
    model = CNN(shape, 10)
    assert model.classifier[1].in_features == flat
    out = model(torch.randn(5, *shape))
    assert out.shape == (5, 10)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(5))  # LogSoftmax
    convs = [m for m in model.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128]
    assert all(c.kernel_size == (3, 3) and c.padding == (2, 2) and c.stride == (1, 1) for c in convs)


@pytest.mark.parametrize("keys, message", [
    ({"input_shape": (784,)}, "model=cnn needs inputs shaped [channels, height, width]"),
    ({"channels": [16, 0]}, "model.channels must be a list of integers >= 1"),
    ({"dropout": 1.5}, "model.dropout must be a number in [0, 1)"),
])
def test_cnn_keys_that_cannot_work_are_refused(keys, message):
    with pytest.raises(ConfigError) as error:
        CNN(**{"input_shape": (1, 28, 28), "num_classes": 10, **keys})
    assert str(error.value).startswith(message)
