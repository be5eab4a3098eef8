"""Functions for `hydra.sweeper.custom_search_space` (the official plugin's hook), imported by the sweeping process."""


def width(cfg, trial) -> None:
    trial.suggest_categorical("model.width", [128, 256])
