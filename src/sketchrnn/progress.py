"""Progress bars: tqdm, redrawn at most every 30 s when stderr is not a terminal.

tqdm redraws up to ten times a second; in a terminal that overwrites one line, but in a log
file (``nohup``, CI, a pipe) every redraw is kept and an hour of training writes megabytes.
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm.auto import tqdm

__all__ = ["progress_bar"]

LOG_INTERVAL_S = 30.0  # seconds between redraws when the bar goes to a file or a pipe
# tqdm.auto picked Jupyter's widget bar: it has no log-file problem.
_WIDGET = any(cls.__name__ == "tqdm_notebook" for cls in tqdm.__mro__)


def progress_bar(iterable: Any = None, **kwargs: Any) -> tqdm:
    """``tqdm(iterable, **kwargs)``, with ``mininterval`` raised to :data:`LOG_INTERVAL_S`
    when the text bar goes to a file or pipe (unless the caller sets it). A notebook's widget
    bar (``tqdm.auto`` in Jupyter) is left as it is."""
    stream = kwargs.get("file") or sys.stderr
    isatty = getattr(stream, "isatty", None)
    to_log = not _WIDGET and not (isatty is not None and isatty())
    if "mininterval" not in kwargs and to_log:
        kwargs["mininterval"] = LOG_INTERVAL_S
    return tqdm(iterable, **kwargs)
