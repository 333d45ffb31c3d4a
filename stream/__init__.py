"""The SoccerKD Stream service: camera frames in through Kafka, action events out.

It imports :mod:`soccerkd` for the model artifact and clip spec, never the reverse.
"""

from soccerkd import __version__ as _library_version

try:   # the installed distribution's version; the library's when run from a source tree
    from importlib.metadata import PackageNotFoundError, version as _dist_version

    __version__ = _dist_version("soccerkd-stream")
except PackageNotFoundError:
    __version__ = _library_version
