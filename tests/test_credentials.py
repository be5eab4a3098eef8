"""Passwords never go in a URL: Hydra would save them with every trial's config (and sweeplab uploads that config to
MLflow). Such a URL is refused in one line that shows it masked; nothing is opened."""
import pytest

from sweeplab.errors import ConfigError, TrackingError
from sweeplab.sweep.storage import open_storage
from sweeplab.tracking import connect

SECRET = "s3cret-Passw0rd"


@pytest.mark.parametrize("url", [
    f"postgresql://sweeplab:{SECRET}@127.0.0.1:9/optuna",
    f"postgresql://sweeplab@127.0.0.1:9/optuna?password={SECRET}",
])
def test_storage_url_with_a_password_is_refused_masked(url):
    with pytest.raises(ConfigError) as refused:
        open_storage(url)
    message = str(refused.value)
    assert SECRET not in message and "127.0.0.1:9/optuna" in message
    assert "~/.pgpass" in message and "PGPASSWORD" in message and len(message.splitlines()) == 1


def test_tracking_uri_with_a_password_is_refused_unshown():
    with pytest.raises(TrackingError) as refused:
        connect(f"http://sweeper:{SECRET}@127.0.0.1:9")
    assert SECRET not in str(refused.value) and "MLFLOW_TRACKING_PASSWORD" in str(refused.value)
