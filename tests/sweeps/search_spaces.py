"""Functions for `hydra.sweeper.custom_search_space` (the official plugin's hook), imported by the sweeping process."""


def width(cfg, trial) -> None:
    trial.suggest_categorical("model.width", [128, 256])


def slow_first_trial(cfg, trial) -> None:
    """Trial 0 trains for 400 epochs, every other trial for 1 (a one-value range per trial: Optuna allows ranges to
    change between trials, not categorical choices)."""
    epochs = 400 if trial.number == 0 else 1
    trial.suggest_int("epochs", epochs, epochs)
