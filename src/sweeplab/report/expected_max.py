"""Expected best validation score against the number of trials (Dodge et al., "Show Your Work", EMNLP 2019): had
the search drawn n of its trials at random, the best of them would be worth this much on average. A curve that
is still rising at the search's size says more trials would still pay; a flat one, that they would not."""
import numpy as np


def expected_max(values, n: np.ndarray) -> np.ndarray:
    """E[max of n draws with replacement] from the observed values: sum_i v_(i) ((i/N)^n - ((i-1)/N)^n)."""
    ordered = np.sort(np.asarray(values, dtype=float))
    count = len(ordered)
    cdf = np.arange(1, count + 1) / count
    weights = cdf[None, :] ** n[:, None] - (cdf - 1 / count)[None, :] ** n[:, None]
    return weights @ ordered


def curve(values, maximize: bool = True, resamples: int = 300, seed: int = 0):
    """n = 1..N, the expected best at each, and a 90 % bootstrap band (the trials resampled with replacement)."""
    sign = 1.0 if maximize else -1.0
    observed = sign * np.asarray(values, dtype=float)
    n = np.arange(1, len(observed) + 1)
    mean = expected_max(observed, n)
    rng = np.random.default_rng(seed)
    draws = np.stack([expected_max(rng.choice(observed, len(observed)), n) for _ in range(resamples)])
    low, high = np.percentile(draws, [5, 95], axis=0)
    if not maximize:
        mean, low, high = -mean, -high, -low
    return n, mean, low, high
