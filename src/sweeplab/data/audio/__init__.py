"""Spoken audio as tensors: WAV reading, log-mel features, their on-disk cache and per-batch augmentation."""
