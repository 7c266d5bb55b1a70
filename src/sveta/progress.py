"""The progress callbacks long jobs report through (the CLI draws bars from them)."""

from __future__ import annotations

from collections.abc import Callable

# Three shapes, one per kind of job: a stream whose length is not known up front (an ingest, a batch of photos)
# reports how many more items are done; a one-pass job (index sync, an epoch loop) reports (done, total); a job of
# several passes (training: features, epochs, tagging; audits; evaluations) also names the pass, so one callback
# can draw a bar per stage. ``total`` is None while unknown.
Advance = Callable[[int], None]
Progress = Callable[[int, int | None], None]
StageProgress = Callable[[str, int, int | None], None]
