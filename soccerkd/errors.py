"""The one exception root of :mod:`soccerkd` and its few meaningful subclasses."""


class SoccerKDError(Exception):
    """Root of every error this library raises on purpose."""


class ConfigError(SoccerKDError, ValueError):
    """A configuration key or value is invalid; the message names both."""


class DataError(SoccerKDError):
    """A dataset, video file or manifest cannot be read or is inconsistent."""


class WeightsError(SoccerKDError):
    """Model weights cannot be found, downloaded or matched to the model."""


class CheckpointError(SoccerKDError):
    """A checkpoint file is missing, corrupt or was written for another model."""
