"""The Free Spoken Digit Dataset as a data source: recordings -> cached log-mel tensors -> splits.

Splits: the dataset's official one (takes 0-4 are the test set), or, with ``holdout_speaker``, one speaker's
recordings as the test set and the other speakers' as the training set: the accuracy on a voice never heard.
"""
from pathlib import Path

import torch

from sweeplab.data.audio import fsdd_files
from sweeplab.data.audio.augment import SpecAugment
from sweeplab.data.audio.cache import cache_key, cached
from sweeplab.data.audio.features import FeatureSettings, log_mel
from sweeplab.data.audio.wav import fit_length, read_wav
from sweeplab.data.source import DataPlaces, LoadedData
from sweeplab.errors import ConfigError, DataError
from sweeplab.paths import resolve

TEST_TAKES = 5  # takes 0-4 of each speaker and digit: the dataset's official test set


class SpokenDigitsSource:
    name = "fsdd"
    class_names = [str(digit) for digit in range(10)]

    def __init__(self, holdout_speaker: str | None = None, offline_dirs: list[str] = (),
                 augment: dict | None = None, **features):
        self.holdout_speaker = holdout_speaker
        self.offline_dirs = [resolve(d) for d in offline_dirs]
        self.augment = SpecAugment(**(augment or {}))
        self.features = FeatureSettings(**features)
        self.augment.check(self.features.shape)

    def fetch(self, places: DataPlaces) -> list[fsdd_files.Recording]:
        """The recordings of the first folder that holds any: our own under data_dir, the extra and offline dirs;
        else a verified download into data_dir."""
        own = places.data_dir / self.name
        looked_in = [own, *places.extra_dirs, *self.offline_dirs]
        for folder in looked_in:
            found = fsdd_files.recordings_in(folder)
            if found:
                return found
        if not places.download:
            raise DataError(fsdd_files.missing_message(looked_in, "download=false"))
        fsdd_files.download(own / "recordings", looked_in)
        return fsdd_files.recordings_in(own)

    def load(self, places: DataPlaces, seed: int) -> LoadedData:
        recordings = self.fetch(places)
        key = cache_key(self.features.as_dict(), [r.path for r in recordings])
        features = cached(places.data_dir / self.name / "features", key, lambda: self._compute(recordings))["features"]
        digits = torch.tensor([r.digit for r in recordings])
        test = self._test_mask(recordings)
        if test.all() or not test.any():
            raise DataError(f"the recordings in {recordings[0].path.parent} leave the training or test split empty; "
                            f"the official split needs takes 0-4 and 5-49")
        return LoadedData(
            train=(features[~test], digits[~test]), test=(features[test], digits[test]), num_classes=10,
            class_names=self.class_names, augment=self.augment if self.augment.enabled else None,
        )

    def features_of(self, path: Path) -> torch.Tensor:
        """One recording as the network's input ``[1, 1, n_mels, frames]`` (for prediction)."""
        clip = fit_length(read_wav(path, self.features.sample_rate), self.features.clip_samples)
        return log_mel(clip[None], self.features)

    def _compute(self, recordings: list[fsdd_files.Recording]) -> dict:
        length, rate = self.features.clip_samples, self.features.sample_rate
        clips = torch.stack([fit_length(read_wav(r.path, rate), length) for r in recordings])
        return {"features": log_mel(clips, self.features)}

    def _test_mask(self, recordings: list[fsdd_files.Recording]) -> torch.Tensor:
        if self.holdout_speaker is None:
            return torch.tensor([r.take < TEST_TAKES for r in recordings])
        speakers = sorted({r.speaker for r in recordings})
        if self.holdout_speaker not in speakers:
            raise ConfigError(f"dataset.holdout_speaker={self.holdout_speaker} is not among the speakers "
                              f"({', '.join(speakers)}); pick one of them or null for the official split")
        return torch.tensor([r.speaker == self.holdout_speaker for r in recordings])
