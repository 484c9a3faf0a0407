"""One logging set-up for every command: ``[LEVEL HH:MM:SS name] message`` lines on stderr."""
import logging
import sys

__all__ = ["setup_logging", "FORMAT"]

FORMAT = "[%(levelname)s %(asctime)s %(name)s] %(message)s"


class _Stderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (a redirect made after set-up,
    such as pytest's capture or a caller's, is followed)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def setup_logging(*names, level=logging.INFO):
    """Give each named logger (default ``propeller``) one stderr handler in the project's format
    unless it already has one, and ``level`` unless a level was set (a user's choice is kept).
    Named loggers, not the root: importing the project never reconfigures an application's logging."""
    for name in names or ("propeller",):
        logger = logging.getLogger(name)
        if not logger.handlers:
            handler = _Stderr()
            handler.setFormatter(logging.Formatter(FORMAT, "%H:%M:%S"))
            logger.addHandler(handler)
            logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(level)
