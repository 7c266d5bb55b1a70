"""The progress callbacks long jobs report through (the CLI draws bars from them)."""

from __future__ import annotations

from collections.abc import Callable

# Two shapes, because some jobs have stages and some have not: a one-pass job (index sync) reports (done, total);
# a job of several passes (training: features, epochs, tagging; audits; evaluations) also names the pass, so one
# callback can draw a bar per stage. ``total`` is None while unknown.
Progress = Callable[[int, int | None], None]
StageProgress = Callable[[str, int, int | None], None]
