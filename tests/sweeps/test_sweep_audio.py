"""A sweep over a feature key: each trial loads the features of its own setting from the cache."""
import pytest

from tests.helpers import needs_fsdd


@pytest.mark.slow
@needs_fsdd
def test_a_sweep_searches_n_mels_and_each_trial_uses_its_own_cache(new_sweep):
    sweep = new_sweep("audio-sweep")
    data_dir = sweep.root / "data"
    code, _, stderr = sweep.run(
        "dataset=spoken_digits", "model=cnn", "epochs=1", "batch_size=128", "dataset.n_mels=choice(16,32)",
        "hydra.sweeper.params={optimizer.lr:'tag(log, interval(1e-3, 3e-3))'}", "hydra.sweeper.n_trials=3",
        f"data_dir={data_dir}",
    )
    assert code == 0, stderr
    trials = sweep.study().trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert {t.params["dataset.n_mels"] for t in trials} <= {16, 32}
    cached = list((data_dir / "fsdd" / "features").glob("*.pt"))
    assert len(cached) == len({t.params["dataset.n_mels"] for t in trials})
    for trial in trials:
        assert trial.value > 0.1  # one epoch on the right features: above chance
