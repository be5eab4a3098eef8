"""The data path: torchvision's real idx parser, ToTensor-exact tensors, offline sources in order, clear errors."""
import gzip

import pytest
import torch
from torchvision.datasets import MNIST
from torchvision.transforms import ToTensor

from tests.helpers import MNIST_FILES, compose, mnist_overrides, write_mnist
from sweeplab.data.sources import TorchvisionSource
from sweeplab.errors import DataError
from sweeplab.data.source import DataPlaces
from sweeplab.data.loading import load_data
from sweeplab.settings import JobSettings


def mnist_source(offline_dirs=()) -> TorchvisionSource:
    return TorchvisionSource("torchvision.datasets.MNIST", offline_dirs=[str(d) for d in offline_dirs])


def load(source, data_dir, extra=(), download=False):
    data = source.load(DataPlaces(data_dir, tuple(extra), download))
    return data.train, data.test


def as_tensors(images, labels):
    return torch.from_numpy(images).unsqueeze(1).float().div(255), torch.from_numpy(labels).long()


def test_tensors_equal_what_to_tensor_gives(tmp_path, synthetic_mnist):
    cfg = compose(*mnist_overrides(synthetic_mnist), f"data_dir={tmp_path}", "device=cpu")
    splits, _ = load_data(cfg, JobSettings.from_config(cfg))

    reference = MNIST(str(tmp_path), train=False, transform=ToTensor())  # the notes' per-sample PIL path
    expected = torch.stack([image for image, _ in reference])
    images, labels = splits.test
    assert images.shape == (100, 1, 28, 28) and images.dtype == torch.float32
    assert torch.equal(images, expected)  # bit for bit
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert labels.tolist() == synthetic_mnist.test[1].tolist()
    assert len(splits.train[1]) + len(splits.val[1]) == 600 and len(splits.val[1]) == 100


def test_files_under_data_dir_come_first(tmp_path):
    own = write_mnist(tmp_path / "data" / "MNIST" / "raw", seed=1, gz=False)
    write_mnist(tmp_path / "extra", seed=2)
    write_mnist(tmp_path / "system", seed=3)
    train, test = load(mnist_source([tmp_path / "system"]), tmp_path / "data", [tmp_path / "extra"])
    assert torch.equal(test[0], as_tensors(*own["test"])[0])
    assert torch.equal(train[1], as_tensors(*own["train"])[1])


@pytest.mark.parametrize("where", ["extra_data_dirs", "offline_dirs"])
def test_gz_files_elsewhere_are_copied_and_decompressed(tmp_path, synthetic_mnist, where):
    source = mnist_source([synthetic_mnist.dir] if where == "offline_dirs" else [])
    extra = [synthetic_mnist.dir] if where == "extra_data_dirs" else []
    train, test = load(source, tmp_path / "data", extra)

    raw = tmp_path / "data" / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(MNIST_FILES)  # decompressed, no leftovers
    assert (raw / "t10k-labels-idx1-ubyte").read_bytes() == gzip.decompress(
        (synthetic_mnist.dir / "t10k-labels-idx1-ubyte.gz").read_bytes()
    )
    assert torch.equal(test[0], as_tensors(*synthetic_mnist.test)[0])
    assert len(train[1]) == 600


def test_no_source_and_no_download_names_dataset_places_and_fix(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as caught:
        load(mnist_source([tmp_path / "system"]), tmp_path / "data", [tmp_path / "empty"])
    message = str(caught.value)
    assert "\n" not in message
    assert "MNIST" in message and "download=false" in message
    for place in (tmp_path / "data" / "MNIST" / "raw", tmp_path / "empty", tmp_path / "system"):
        assert str(place) in message
    assert "extra_data_dirs" in message and "dataset=digits" in message


def damage(path, how):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncated" else b"not an idx file" + data[16:])


@pytest.mark.parametrize("how", ["corrupt", "truncated"])
@pytest.mark.parametrize("name", ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
def test_bad_file_under_data_dir_names_the_folder(tmp_path, how, name):
    raw = tmp_path / "MNIST" / "raw"
    write_mnist(raw, gz=False)
    damage(raw / name, how)
    with pytest.raises(DataError) as caught:
        load(mnist_source(), tmp_path)
    assert "\n" not in str(caught.value) and str(raw) in str(caught.value)


def test_truncated_gz_in_extra_dir_names_the_file_and_leaves_nothing_half_copied(tmp_path):
    write_mnist(tmp_path / "extra")
    damage(tmp_path / "extra" / "train-images-idx3-ubyte.gz", "truncated")
    with pytest.raises(DataError) as caught:
        load(mnist_source(), tmp_path / "data", [tmp_path / "extra"])
    assert "\n" not in str(caught.value)
    assert str(tmp_path / "extra" / "train-images-idx3-ubyte.gz") in str(caught.value)
    assert not any(p.name.endswith(".partial") for p in (tmp_path / "data").rglob("*"))
