"""Progress bars: one place that makes the library's tqdm bars (on stderr, never in outputs)."""

from __future__ import annotations

from typing import Iterable


def progress_bar(total: int | None = None, *, desc: str | None = None, enabled: bool = True,
                 unit: str = "batch", initial: int = 0, leave: bool = True, **options):
    """A tqdm bar (``tqdm.auto``: a widget in notebooks, text on stderr elsewhere), disabled
    when ``enabled`` is false; ``options`` go to tqdm (``unit_scale``, ``file``...)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, desc=desc, unit=unit,
                leave=leave, dynamic_ncols=True, **options)


def progress(iterable: Iterable, *, desc: str | None = None, enabled: bool = True,
             unit: str = "batch", total: int | None = None):
    """``iterable`` wrapped in a progress bar (``total``: ``len(iterable)`` when it has one)."""
    from tqdm.auto import tqdm

    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)
    return tqdm(iterable, total=total, disable=not enabled, desc=desc, unit=unit,
                dynamic_ncols=True)
