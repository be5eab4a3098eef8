"""sweeplab: Hydra-composed, Optuna-searched, MLflow-tracked PyTorch training jobs."""
