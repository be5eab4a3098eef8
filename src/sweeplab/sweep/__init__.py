"""Sweep support: the Optuna study's storage, the job's link back to its trial, the study's MLflow parent run."""
