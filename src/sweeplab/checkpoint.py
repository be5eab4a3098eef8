"""A job's best weights on disk, with the data facts its model was built from, and the model rebuilt from them."""
from pathlib import Path

import torch
from omegaconf import OmegaConf

from sweeplab.building import build_model

WEIGHTS_FILE = "best.pt"


def save(path: Path, state_dict: dict, facts: dict, class_names: list[str] | None = None) -> None:
    torch.save({"state_dict": state_dict, **facts, "input_shape": list(facts["input_shape"]), "class_names": class_names},
               path)


def facts_of(checkpoint: dict) -> dict:
    """The data facts stored beside the weights (checkpoints written before input_shape/in_channels keep working)."""
    shape = tuple(checkpoint["input_shape"])
    return {"input_shape": shape, "in_features": int(torch.Size(shape).numel()), "in_channels": shape[0],
            "num_classes": int(checkpoint["num_classes"])}


def load_trained_model(run_dir: Path, trusted: bool = True) -> tuple[torch.nn.Module, dict]:
    """The best weights a finished job saved, in the model its own config describes, and the checkpoint's facts."""
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    checkpoint = torch.load(run_dir / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    facts = facts_of(checkpoint)
    model = build_model(cfg.model, facts, trusted=trusted)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval(), {**facts, "class_names": checkpoint.get("class_names")}
