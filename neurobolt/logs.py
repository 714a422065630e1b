"""Logging set-up shared by the workflow scripts and the command line."""

from __future__ import annotations

import logging
import os
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(log_file: str | os.PathLike | None = None, *, level: int = logging.INFO) -> None:
    """Send neurobolt's log lines to stderr and, if given, to ``log_file`` (appending).

    Parameters
    ----------
    log_file : path-like | None
        A file to write the log to as well (its folder is created).
    level : int
        The logging level of the ``neurobolt`` logger.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    logging.basicConfig(level=logging.WARNING, format=_FORMAT, handlers=handlers, force=True)
    logging.getLogger("neurobolt").setLevel(level)
