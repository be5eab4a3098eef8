"""The image_folder source: ImageFolder layout -> a uint8 cache on disk, memory-mapped back; errors in one line."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sweeplab.data import make_splits
from sweeplab.data.image_cache import mapped_file
from sweeplab.data.image_folder import ImageFolderSource
from sweeplab.data.source import DataPlaces
from sweeplab.data.splits import Rows
from sweeplab.errors import ConfigError, DataError
from sweeplab.model import FeedForwardNet
from sweeplab.names import WEIGHTS_FILE
from sweeplab.predict import predict
from sweeplab.training import fit


def write_image(path: Path, size_hw=(12, 10), mode="RGB", label=0, seed=0) -> None:
    """Noise with a bright channel (RGB) or band (grey) that tells the class apart."""
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    array = rng.integers(0, 60, (*size_hw, channels), dtype=np.uint8)
    if channels == 3:
        array[..., 2 * label] += 150
    else:
        array[label * size_hw[0] // 2 : (label + 1) * size_hw[0] // 2] += 150
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode).save(path)


def write_folder(root: Path, per_class=(30, 10), classes=("cat", "dog"), splits=("train", "test"), **image) -> Path:
    """<root>/<split>/<class>/<i>.png (or <root>/<class>/<i>.png when splits is empty)."""
    for split, count in zip(splits or ("",), per_class):
        for label, name in enumerate(classes):
            for i in range(count):
                write_image(root / split / name / f"{i}.png", label=label, seed=hash((split, name, i)) % 2**32, **image)
    return root


@pytest.fixture
def folder(tmp_path) -> Path:
    return write_folder(tmp_path / "pets")


def load(root, data_dir, **settings):
    return ImageFolderSource(str(root), **settings).load(DataPlaces(Path(data_dir)), seed=0)


def cache_folders(data_dir: Path) -> list[Path]:
    """Every folder there: the caches, and any temporary folder a build left behind."""
    return sorted(p for p in (data_dir / "image_folder").iterdir() if p.is_dir())


def test_load_decodes_into_a_memory_mapped_uint8_cache(folder, tmp_path):
    data = load(folder, tmp_path / "data")

    images, labels = data.train
    assert images.shape == (60, 3, 12, 10) and images.dtype == torch.uint8
    assert labels.tolist() == [0] * 30 + [1] * 30 and data.num_classes == 2 and data.class_names == ["cat", "dog"]
    assert data.test[0].shape == (20, 3, 12, 10)
    first_dog = np.array(Image.open(folder / "train" / "dog" / "0.png")).transpose(2, 0, 1).copy()
    assert torch.equal(images[30], torch.from_numpy(first_dog))  # pixel for pixel, CHW
    (cache,) = cache_folders(tmp_path / "data")
    assert mapped_file(images) == str(cache / "train_images.npy")
    assert mapped_file(data.test[0]) == str(cache / "test_images.npy")


def test_grey_resized_and_test_fraction(tmp_path):
    root = write_folder(tmp_path / "flat", per_class=(20,), splits=(), mode="L")
    write_image(root / "cat" / "big.png", size_hw=(30, 20), mode="RGB")  # another size and mode
    data = load(root, tmp_path / "data", channels=1, resize=[8, 6], test_fraction=0.25)
    assert data.train[0].shape == (31, 1, 8, 6) and data.test[0].shape == (10, 1, 8, 6)
    assert sorted(data.train[1].tolist() + data.test[1].tolist()) == [0] * 21 + [1] * 20
    again = load(root, tmp_path / "data2", channels=1, resize=[8, 6], test_fraction=0.25)
    assert torch.equal(again.test[1], data.test[1])  # a fixed draw


def test_second_load_reuses_the_cache_without_decoding(folder, tmp_path, monkeypatch):
    first = load(folder, tmp_path / "data")
    (cache,) = cache_folders(tmp_path / "data")
    written = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}

    def no_decoding(self, path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(ImageFolderSource, "_decode", no_decoding)
    second = load(folder, tmp_path / "data")
    assert torch.equal(second.train[0], first.train[0])
    assert cache_folders(tmp_path / "data") == [cache]
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == written


def test_changed_files_or_settings_rebuild_it(folder, tmp_path):
    load(folder, tmp_path / "data")
    changed = folder / "train" / "cat" / "0.png"
    Image.new("RGB", (10, 12), (255, 0, 0)).save(changed)
    data = load(folder, tmp_path / "data")
    assert len(cache_folders(tmp_path / "data")) == 2
    assert data.train[0][0, :, 0, 0].tolist() == [255, 0, 0]
    load(folder, tmp_path / "data", channels=1)
    assert len(cache_folders(tmp_path / "data")) == 3


RACE = """
import sys, time
from pathlib import Path
from sweeplab.data.image_folder import ImageFolderSource
from sweeplab.data.source import DataPlaces
decode, decoded = ImageFolderSource._decode, []
def slow_decode(self, path):  # a slow disk: the two builds surely overlap
    decoded.append(path)
    time.sleep(0.002)
    return decode(self, path)
ImageFolderSource._decode = slow_decode
root, data_dir, go = map(Path, sys.argv[1:4])
if sys.argv[4] == "unlocked":  # what two machines sharing data_dir over a network file system may do
    import contextlib
    from sweeplab.data import image_cache
    image_cache._lock = lambda folder: contextlib.nullcontext()
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
data = ImageFolderSource(str(root)).load(DataPlaces(data_dir), seed=0)
print(len(decoded), int(data.train[0].sum()), int(data.test[0].sum()), flush=True)
"""


@pytest.mark.slow  # two fresh interpreters importing torch: ~20 s on two shared cores
@pytest.mark.parametrize("lock, decoded", [("locked", ["0", "80"]), ("unlocked", ["80", "80"])])
def test_two_processes_loading_a_new_cache_at_once(lock, decoded, folder, tmp_path):
    """With the lock, one decodes and the other maps its cache; without it, both decode and the atomic rename keeps
    one complete copy."""
    data_dir, go = tmp_path / "data", tmp_path / "go"
    command = [sys.executable, "-c", RACE, str(folder), str(data_dir), str(go), lock]
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready", worker.stderr.read()
    go.touch()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        results.append(out.split())
    assert sorted(r[0] for r in results) == decoded
    assert results[0][1:] == results[1][1:]
    (cache,) = cache_folders(data_dir)  # one complete copy, no temporary folder left
    assert not cache.name.startswith(".")
    expected = load(folder, tmp_path / "data-alone")
    assert results[0][1:] == [str(int(expected.train[0].sum())), str(int(expected.test[0].sum()))]


def test_training_reads_the_memory_map_batch_by_batch(folder, tmp_path):
    torch.set_num_threads(1)
    data = load(folder, tmp_path / "data")
    splits = make_splits(data.train, data.test, 10, seed=1).to(torch.device("cpu"))
    images = splits.train[0]
    assert isinstance(images, Rows) and images.base is data.train[0]  # a view plus an index: nothing copied
    assert mapped_file(images.base).endswith("train_images.npy") and len(images) == 50

    torch.manual_seed(0)
    model = FeedForwardNet(splits.in_features, splits.num_classes, 32)
    history = fit(model, torch.optim.Adam(model.parameters(), 1e-2), splits, epochs=3, batch_size=16, seed=0,
                  progress=False, cuda_graph=False)
    assert history.best.val_accuracy == 1.0 and history.epochs[-1].train_loss < history.epochs[0].train_loss


def test_uint8_and_float_splits_train_alike(folder, tmp_path):
    """The per-batch scaling gives the same numbers as scaling the whole split first, as float32 sources do."""
    data = load(folder, tmp_path / "data")
    as_float = (data.train[0].float().div(255), data.train[1])
    results = []
    for train in (data.train, as_float):
        splits = make_splits(train, (data.test[0].float().div(255), data.test[1]), 10, seed=1)
        torch.manual_seed(0)
        model = FeedForwardNet(splits.in_features, splits.num_classes, 16)
        history = fit(model, torch.optim.SGD(model.parameters(), 0.1), splits, epochs=2, batch_size=8, seed=0,
                      progress=False)
        results.append([v for m in history.epochs for v in (m.train_loss, m.val_loss, m.val_accuracy)])
    assert results[0] == pytest.approx(results[1], rel=1e-5)


def unreadable(root: Path) -> str:
    path = root / "train" / "dog" / "5.png"
    path.write_bytes(b"not a png")
    return str(path)


def truncated(root: Path) -> str:
    path = root / "test" / "cat" / "2.png"
    path.write_bytes(path.read_bytes()[:60])
    return str(path)


def mixed_sizes(root: Path) -> str:
    write_image(root / "test" / "cat" / "odd.png", size_hw=(16, 16))
    return "dataset.resize=[H,W]"


def no_class_folders(root: Path) -> str:
    for png in (root / "train").rglob("*.png"):
        png.rename(root / "train" / f"{png.parent.name}-{png.name}")
    for name in ("cat", "dog"):
        (root / "train" / name).rmdir()
    return "class sub-folders"


def no_images(root: Path) -> str:
    for png in (root / "train").rglob("*.png"):
        png.unlink()
    return f"{root / 'train'} holds no images"


def no_train_test(root: Path) -> str:
    (root / "test").rename(root / "tests")
    return "dataset.test_fraction"


def stranger_class(root: Path) -> str:
    write_image(root / "test" / "bird" / "0.png")
    return "lacks (bird)"


BAD = {  # case -> a function that spoils the folder and returns what the message must contain
    "missing folder": lambda root: f"{root / 'nowhere'} not found; set dataset.root",
    "no train/test": no_train_test,
    "no class folders": no_class_folders,
    "no images": no_images,
    "unreadable image": unreadable,
    "truncated image": truncated,
    "mixed sizes": mixed_sizes,
    "test class not in train": stranger_class,
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_folders_fail_in_one_line_naming_the_fix(case, folder, tmp_path):
    needle = BAD[case](folder)
    root = folder / "nowhere" if case == "missing folder" else folder
    with pytest.raises((DataError, ConfigError)) as caught:
        load(root, tmp_path / "data")
    message = str(caught.value)
    assert "\n" not in message and needle in message, message
    if case == "mixed sizes":  # two differing files, by name
        assert "odd.png is 16×16" in message and "0.png is 12×10" in message
    assert not list(tmp_path.glob("data/**/*.npy"))  # no cache, whole or partial


@pytest.mark.parametrize("settings, key", [
    ({"channels": 4}, "dataset.channels"), ({"resize": [0, 8]}, "dataset.resize"), ({"resize": [8]}, "dataset.resize"),
    ({"test_fraction": 1.5}, "dataset.test_fraction"), ({"root": None}, "dataset.root"),
])
def test_bad_settings_name_their_key(settings, key, folder):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        ImageFolderSource(**{"root": str(folder), **settings})


def test_train_py_trains_on_an_image_folder(folder, workspace):
    result = workspace.train("dataset=image_folder", f"dataset.root={folder}", "val_size=10", "model=ffn128",
                             "mlflow.enabled=false")
    assert result.returncode == 0, result.stderr
    saved = torch.load(workspace.out / WEIGHTS_FILE, weights_only=True)
    assert saved["state_dict"]["dense.0.weight"].shape == (128, 3 * 12 * 10)
    assert len(cache_folders(workspace.root / "data")) == 1
    rows = predict(workspace.out, 12)  # from the same cache: test images 0..9 are cats, 10.. dogs
    assert [true for _i, _p, true in rows] == [0] * 10 + [1] * 2 and {p for _i, p, _t in rows} <= {0, 1}


@pytest.mark.parametrize("spoil, overrides, needle", [
    (mixed_sizes, [], "dataset.resize=[H,W]"),
    pytest.param(unreadable, ["dataset.resize=[8,8]"], "5.png", marks=pytest.mark.slow),
    pytest.param(None, ["dataset.root=null"], "dataset.root", marks=pytest.mark.slow),
    pytest.param(None, ["dataset.channels=2"], "dataset.channels", marks=pytest.mark.slow),
])
def test_train_py_bad_image_input_is_one_line(spoil, overrides, needle, folder, workspace):
    if spoil:
        spoil(folder)
    result = workspace.train("dataset=image_folder", f"dataset.root={folder}", "val_size=10", "mlflow.enabled=false",
                             *overrides)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and needle in last, result.stderr
    assert not (workspace.out / WEIGHTS_FILE).exists()


def test_unwritable_data_dir_is_one_line(folder, tmp_path):
    (tmp_path / "file").write_text("a regular file: nothing can be created under it")
    with pytest.raises(DataError, match=r"set data_dir=") as caught:
        load(folder, tmp_path / "file" / "sub")
    assert "\n" not in str(caught.value)
