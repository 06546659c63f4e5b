"""Short renderings of long lists for one-line messages."""

from __future__ import annotations

from typing import Sequence


def preview(items: Sequence, k: int = 5) -> str:
    """The first ``k`` items joined by commas, then ``..., (N in all)`` if there are more."""
    head = ", ".join(map(str, items[:k]))
    return head + (f", ... ({len(items)} in all)" if len(items) > k else "")
