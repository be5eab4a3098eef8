class SweeplabError(Exception):
    """A problem the user can fix; reported as one line, without a traceback."""


class ConfigError(SweeplabError):
    """A configuration value is invalid."""


class DataError(SweeplabError):
    """The dataset cannot be found, read or written."""


class TrackingError(SweeplabError):
    """The MLflow tracking store cannot be reached or written."""


def first_line(error) -> str:
    """An exception as one line, for messages that must stay one line."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
