"""One place that turns a ``device`` setting into a ``torch.device``."""

from __future__ import annotations

import torch

from graphmtl.errors import check

DEVICE_HELP = "cpu, cuda, cuda:N or auto (cuda when available, else cpu)"


def resolve_device(spec: str | torch.device | None = "cpu") -> torch.device:
    """The ``torch.device`` for ``spec``: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``.

    ``auto`` is ``cuda`` when a GPU is visible, else ``cpu``; ``None`` is ``cpu``. A GPU that is
    not available is a one-line error naming the setting.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = "cpu" if spec is None else str(spec).strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        dev = None
    check(dev is not None and dev.type in ("cpu", "cuda"),
          f"device {spec!r}: expected {DEVICE_HELP}")
    if dev.type == "cuda":
        check(torch.cuda.is_available(),
              f"device {spec!r}: CUDA is not available here (torch {torch.__version__}); "
              "use --device cpu or auto")
        count = torch.cuda.device_count()
        check(dev.index is None or dev.index < count,
              f"device {spec!r}: only {count} CUDA device(s) visible (cuda:0..cuda:{count - 1})")
    return dev


def validate_device(spec: str) -> str:
    """Check the syntax of a device setting without touching CUDA (for configs); returns it
    normalised. Availability is checked when the setting is used (:func:`resolve_device`)."""
    s = str(spec).strip().lower()
    ok = s in ("cpu", "cuda", "auto") or (s.startswith("cuda:") and s[5:].isdigit())
    check(ok, f"device {spec!r}: expected {DEVICE_HELP}")
    return s
