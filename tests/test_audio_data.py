"""The spoken-digits source on real FSDD recordings: splits, the feature cache, and bad input in one line."""
import subprocess
import sys
import wave

import pytest
import torch

from tests.helpers import FSDD, PROJECT_ROOT, needs_fsdd, offline_places as places, small_fsdd_copy as small_copy
from sweeplab.data import make_splits
from sweeplab.data.audio.fsdd_files import expected_checksums
from sweeplab.data.spoken_digits import SpokenDigitsSource
from sweeplab.errors import ConfigError, DataError


pytestmark = needs_fsdd


def source(**keys) -> SpokenDigitsSource:
    return SpokenDigitsSource(offline_dirs=[str(FSDD)], **keys)


def test_official_split_tests_on_takes_0_to_4_and_validation_comes_from_the_rest(tmp_path):
    data = source().load(places(tmp_path), seed=0)
    assert len(data.train[1]) == 2700 and len(data.test[1]) == 300
    assert data.input_shape == (1, 64, 32) and data.num_classes == 10 and data.augment is None
    assert torch.bincount(data.test[1]).tolist() == [30] * 10
    reference = source().features_of(FSDD / "recordings" / "3_theo_4.wav")[0]  # take 4: a test recording
    assert any(torch.equal(reference, x) for x in data.test[0])
    assert not any(torch.equal(reference, x) for x in data.train[0])
    splits = make_splits(data.train, data.test, 300, seed=7)
    again = make_splits(data.train, data.test, 300, seed=7)
    assert torch.equal(splits.val[0], again.val[0]) and len(splits.train[1]) == 2400


def test_holdout_speaker_is_the_whole_test_set_and_absent_from_training(tmp_path):
    data = source(holdout_speaker="theo").load(places(tmp_path), seed=0)
    assert len(data.test[1]) == 500 and len(data.train[1]) == 2500
    theo = source().features_of(FSDD / "recordings" / "5_theo_30.wav")[0]
    george = source().features_of(FSDD / "recordings" / "5_george_30.wav")[0]
    assert any(torch.equal(theo, x) for x in data.test[0]) and not any(torch.equal(theo, x) for x in data.train[0])
    assert any(torch.equal(george, x) for x in data.train[0]) and not any(torch.equal(george, x) for x in data.test[0])
    with pytest.raises(ConfigError, match="dataset.holdout_speaker=alice is not among the speakers .george, jackson"):
        source(holdout_speaker="alice").load(places(tmp_path), seed=0)


def test_features_are_cached_per_setting_and_per_files(tmp_path):
    folder = small_copy(tmp_path / "few")
    cache = tmp_path / "data" / "fsdd" / "features"
    first = SpokenDigitsSource().load(places(tmp_path, folder), seed=0)
    assert len(list(cache.glob("*.pt"))) == 1
    again = SpokenDigitsSource().load(places(tmp_path, folder), seed=0)
    assert torch.equal(first.train[0], again.train[0]) and len(list(cache.glob("*.pt"))) == 1
    SpokenDigitsSource(n_mels=32).load(places(tmp_path, folder), seed=0)
    assert len(list(cache.glob("*.pt"))) == 2
    (folder / "0_george_7.wav").write_bytes((folder / "1_george_7.wav").read_bytes())  # a changed file
    changed = SpokenDigitsSource().load(places(tmp_path, folder), seed=0)
    assert len(list(cache.glob("*.pt"))) == 3 and not torch.equal(changed.train[0], first.train[0])
    assert not list(cache.glob(".*"))  # no temporary file left behind


BUILD = """
import sys
from pathlib import Path
from sweeplab.data.source import DataPlaces
from sweeplab.data.spoken_digits import SpokenDigitsSource
data = SpokenDigitsSource(offline_dirs=[sys.argv[1]]).load(DataPlaces(Path(sys.argv[2]), download=False), seed=0)
print(float(data.train[0].sum()))
"""


def test_two_processes_building_the_same_cache_at_once_leave_one_whole_file(tmp_path):
    env = {"PYTHONPATH": str(PROJECT_ROOT / "src"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-c", BUILD, str(FSDD), str(tmp_path / "data")]
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), [err for _, err in outputs]
    cache = tmp_path / "data" / "fsdd" / "features"
    (entry,) = cache.glob("*.pt")
    assert not list(cache.glob(".*"))
    stored = torch.load(entry, weights_only=True)["features"]
    assert stored.shape == (3000, 1, 64, 32)
    sums = {out.strip() for out, _ in outputs}
    assert len(sums) == 1  # both built the same tensors; the one on disk is one of them, whole


def test_the_shipped_checksums_are_those_of_the_offline_copy():
    shipped = expected_checksums()
    copy = dict(reversed(line.split()) for line in (FSDD / "SHA256SUMS").read_text().splitlines() if line.strip())
    assert len(shipped) == 3000 and shipped == copy


def damaged(tmp_path, name: str, content: bytes | None = None, **wav) -> SpokenDigitsSource:
    folder = small_copy(tmp_path / "few", speakers=("george",))
    if content is not None:
        (folder / name).write_bytes(content)
    else:
        with wave.open(str(folder / name), "wb") as file:
            file.setnchannels(wav.get("channels", 1))
            file.setsampwidth(2)
            file.setframerate(wav.get("rate", 8000))
            file.writeframes(b"\0\1" * 4000 * wav.get("channels", 1))
    return folder


@pytest.mark.parametrize("name, content, wav, message", [
    ("0_george_1.wav", b"this is not audio", {}, r"0_george_1\.wav is not a readable WAV file"),
    ("0_george_1.wav", None, {"rate": 16000}, r"sampled at 16000 Hz but dataset\.sample_rate=8000; set dataset\.sample_rate=16000"),
    ("0_george_1.wav", None, {"channels": 2}, r"0_george_1\.wav has 2 channels; convert it to mono"),
    ("notes.wav", b"RIFF", {}, r"notes\.wav is not named \{digit\}_\{speaker\}_\{take\}\.wav"),
])
def test_bad_recordings_are_named_with_the_fix(tmp_path, name, content, wav, message):
    folder = damaged(tmp_path, name, content, **wav)
    with pytest.raises(DataError, match=message):
        SpokenDigitsSource().load(places(tmp_path, folder), seed=0)


def test_a_truncated_recording_is_named(tmp_path):
    folder = small_copy(tmp_path / "few", speakers=("george",))
    whole = (folder / "2_george_3.wav").read_bytes()
    (folder / "2_george_3.wav").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=r"2_george_3\.wav is truncated \(\d+ of \d+ samples\); replace the file"):
        SpokenDigitsSource().load(places(tmp_path, folder), seed=0)


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_no_recordings_says_where_it_looked_and_what_to_download(tmp_path, make):
    folder = tmp_path / "recordings-here"
    if make == "empty":
        folder.mkdir()
        (folder / "README.txt").write_text("no audio")
    with pytest.raises(DataError) as error:
        SpokenDigitsSource().fetch(places(tmp_path, folder))
    text = str(error.value)
    assert "\n" not in text and str(folder) in text and str(tmp_path / "data" / "fsdd") in text
    assert "download=false" in text and "v1.0.10.tar.gz" in text
