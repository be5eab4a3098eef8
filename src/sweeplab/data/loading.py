"""The data a job trains on: its dataset's files found or fetched, loaded once per process, split, on the job's
device, with the facts a model may be built from."""
import torch
from omegaconf import DictConfig, OmegaConf

from sweeplab.building import build
from sweeplab.data.source import DataPlaces, LoadedData
from sweeplab.data.splits import make_splits
from sweeplab.settings import JobSettings


def data_places(settings: JobSettings) -> DataPlaces:
    return DataPlaces(settings.data_dir, settings.extra_data_dirs, settings.download)


def fetch_dataset(cfg: DictConfig, settings: JobSettings) -> None:
    """Find or download the dataset's files without reading them (a DataError says where it looked)."""
    build(cfg.dataset.source, key="dataset.source").fetch(data_places(settings))


def load_data(cfg: DictConfig, settings: JobSettings):
    """The dataset's splits on the job's device, with the facts a model may be built from.

    The jobs of a sweep that Hydra's basic launcher runs in one process share them: the last dataset loaded is kept
    for the next job that asks for the same data (the same dataset config, places, split seed, validation size and
    device). The loop only reads the split tensors (batches are gathered copies), so sharing them is safe."""
    key = (OmegaConf.to_yaml(cfg.dataset, resolve=True), data_places(settings), settings.split_seed,
           settings.val_size, str(settings.device))
    if _last_loaded.get("key") != key:
        _last_loaded.clear()  # one dataset at a time: a sweep over datasets holds no more memory than before
        data: LoadedData = build(cfg.dataset.source, key="dataset.source").load(data_places(settings),
                                                                                settings.split_seed)
        splits = make_splits(data.train, data.test, settings.val_size, settings.split_seed).to(settings.device)
        _last_loaded.update(key=key, value=(splits, data))
    return _last_loaded["value"]


_last_loaded: dict = {}


def data_facts(data: LoadedData) -> dict:
    shape = data.input_shape
    return {"input_shape": shape, "in_features": int(torch.Size(shape).numel()), "in_channels": shape[0] if shape else 1,
            "num_classes": data.num_classes}
