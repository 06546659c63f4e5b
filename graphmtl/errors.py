"""The one exception type graphmtl raises for bad input.

Every user-facing error is a :class:`GraphMTLError` whose message is a single line naming what is
wrong (file, line, task, parameter). The CLI prints it as ``graphmtl: error: <message>`` and exits
with status 2, never with a traceback.
"""

from __future__ import annotations


class GraphMTLError(ValueError):
    """Bad input or configuration; the message is one line and names the culprit."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def check(condition: bool, message: str) -> None:
    """Raise :class:`GraphMTLError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise GraphMTLError(message)
