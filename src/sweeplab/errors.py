class SweeplabError(Exception):
    """A problem the user can fix; reported as one line, without a traceback."""


class ConfigError(SweeplabError):
    """A configuration value is invalid."""


class DataError(SweeplabError):
    """The dataset cannot be found, read or written."""


class TrackingError(SweeplabError):
    """The MLflow tracking store cannot be reached or written."""
