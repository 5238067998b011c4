"""Progress bars redraw rarely when they go to a log file, as often as tqdm likes on a terminal."""

from __future__ import annotations

import io

from sketchrnn.progress import LOG_INTERVAL_S, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_written_to_a_file_redraws_every_30_seconds():
    log = io.StringIO()
    with progress_bar(range(1000), file=log, desc="train") as bar:
        assert bar.mininterval == LOG_INTERVAL_S == 30.0
        for _ in bar:
            pass
    # Opened, closed, and nothing between: a fast loop leaves two lines, not a thousand.
    assert log.getvalue().count("\r") <= 3
    assert "1000/1000" in log.getvalue()


def test_a_terminal_bar_and_an_explicit_interval_are_left_alone():
    with progress_bar(range(3), file=Terminal()) as bar:
        assert bar.mininterval == 0.1  # tqdm's own default
    with progress_bar(range(3), file=io.StringIO(), mininterval=2.0) as bar:
        assert bar.mininterval == 2.0
