"""The container both SDP solvers return."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SDPResult:
    """Solution of the clustering SDP for one k.

    Attributes:
        k: number of groups.
        objective: ``<A, X>`` at the returned point.
        factor: ``[n, r]`` with ``X ~= factor @ factor.T`` (rows feed the rounding).
        y: ``[n]`` row-sum multipliers (dual), or None.
        z: trace multiplier, or None.
        N: ``[n, n]`` multipliers of ``X >= 0``, or None.
        X: ``[n, n]`` the primal matrix when the solver forms it (exact solver), else None.
        residuals: primal feasibility: ``row_sum`` = max|X 1 - 1|, ``trace`` = |tr X - k|,
            ``min_entry`` / ``min_eig`` where the solver can violate them.
        seconds: wall time of the solve.
        iterations: solver iterations (SCS iterations, or inner L-BFGS-B iterations).
        status: solver status string.
        info: anything else worth reporting (solver name, rank, penalty...).
    """

    k: int
    objective: float
    factor: np.ndarray
    y: np.ndarray | None = None
    z: float | None = None
    N: np.ndarray | None = None
    X: np.ndarray | None = None
    residuals: dict = field(default_factory=dict)
    seconds: float = 0.0
    iterations: int = 0
    status: str = "optimal"
    info: dict = field(default_factory=dict)
