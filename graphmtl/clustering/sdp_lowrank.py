"""The clustering SDP by a nonnegative low-rank factorisation (Burer-Monteiro / Kulis et al.).

Write ``X = V V^T`` with ``V >= 0`` of size ``n x r``. Then ``X >= 0`` and ``X psd`` hold by
construction, ``tr X = ||V||_F^2`` and ``X 1 = V (V^T 1)``; only the n + 1 equality constraints
remain, handled by an augmented Lagrangian

    L(V; y, z) = -<A, V V^T> + y^T c1 + z c2 + (sigma/2) (||c1||^2 + c2^2),
    c1 = V (V^T 1) - 1,  c2 = ||V||_F^2 - k,

minimised over ``V >= 0`` for fixed multipliers by spectral projected gradient (SPG:
Barzilai-Borwein steps, projection = clipping at 0, nonmonotone Armijo backtracking; Birgin,
Martinez & Raydan 2000), followed by ``y += sigma c1``, ``z += sigma c2`` and a penalty increase
when the violation stalls (Kulis, Surendran & Platt, AISTATS 2007). One function + gradient costs
one ``A @ V`` (O(n^2 r)) plus O(n r); memory is O(n^2) for A and O(n r) for everything else.
(scipy's L-BFGS-B was used before: its Cauchy-point search over the many active bounds ``V = 0``
cost ~90 ms per iteration at n = 500 against 2 ms for the gradient -- 30x slower overall.)

The problem is nonconvex in V, and ``V V^T`` with ``V >= 0`` is completely positive (a subset of
the SDP's feasible set): it reaches the SDP optimum when that is (close to) a partition matrix --
planted groups at low/moderate noise -- but falls 3-15% short at high noise, where the SDP optimum
has rank ~n/3. :func:`graphmtl.clustering.sdp_admm.solve_sdp_admm` solves that case exactly;
``TaskClustering`` switches to it when the certified gap says the factorisation fell short.
"""

from __future__ import annotations

import time

import numpy as np
from scipy.sparse.linalg import eigsh

from graphmtl.utils.threads import blas_threads
from graphmtl.clustering.result import SDPResult
from graphmtl.errors import check


def default_rank(n: int, k: int) -> int:
    """``r = min(n, 2k + 2)``: the optimum of a planted instance has rank k; the slack columns
    let the iterates escape poor stationary points (Burer-Monteiro)."""
    return int(min(n, 2 * k + 2))


def spectral_start(A: np.ndarray, k: int, r: int, seed: int = 0, n_init: int = 10) -> np.ndarray:
    """A feasible start ``[n, r]``: the partition found by k-means on the top-k eigenvectors.

    ``V[:, :k] = onehot(labels) / sqrt(sizes)`` gives ``V V^T`` = that partition's matrix
    (``X 1 = 1`` and ``tr X = k`` exactly); the ``r - k`` extra columns get tiny positive noise
    so the solver can move mass off the partition. A random start needs several times more
    iterations to find the block structure, and a start with two groups merged costs the
    solver thousands of iterations to split them, so k-means gets ``n_init`` = 10 restarts (cheap
    with one thread: ~0.2 s at n = 2000; at n = 2000, nu = 1 one restart merged two groups).
    """
    from sklearn.cluster import KMeans

    n = A.shape[0]
    rng = np.random.default_rng(seed)
    if k == 1:
        labels = np.zeros(n, dtype=int)
    else:
        _, U = eigsh(A, k=min(k, n - 1), which="LA", v0=rng.standard_normal(n), tol=1e-6)
        U /= np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1e-12)
        labels = KMeans(k, n_init=n_init, random_state=seed).fit_predict(U)
    V = np.zeros((n, r))
    sizes = np.bincount(labels, minlength=k)[labels]
    V[np.arange(n), labels] = 1.0 / np.sqrt(sizes)
    V[:, :k][:, np.bincount(labels, minlength=k) == 0] = 0.0
    V += 1e-3 * rng.random((n, r)) / np.sqrt(n)
    return V


def spectral_norm(A: np.ndarray, seed: int = 0) -> float:
    """``||A||_2`` of a symmetric A to ~3 digits (Lanczos; dense for tiny n). Only sets scales."""
    n = A.shape[0]
    if n <= 50:
        return float(np.abs(np.linalg.eigvalsh(A)).max())
    v0 = np.random.default_rng(seed).standard_normal(n)
    return float(np.abs(eigsh(A, k=1, which="LM", tol=1e-3, v0=v0)[0]).max())


def _pos(a):
    """``max(a, 0)`` of a numpy array or a torch tensor."""
    return np.maximum(a, 0.0) if isinstance(a, np.ndarray) else a.clamp_min(0.0)


def _outer(a, b):
    return np.outer(a, b) if isinstance(a, np.ndarray) else torch_outer(a, b)


def torch_outer(a, b):
    import torch

    return torch.outer(a, b)


def _spg(fg, V, f, G, step, pg_tol, max_iter, memory=10, ftol=1e-9, window=50):
    """Spectral projected gradient for ``min f(V)`` s.t. ``V >= 0`` from ``(V, f, G)``.

    Stops when the projected-gradient step ``max|V - max(V - G, 0)|`` is below ``pg_tol``, or
    when f fell by less than ``ftol |f|`` over the last ``window`` iterations (a stalled inner
    solve is better spent on a multiplier update), or after ``max_iter`` iterations.
    Returns ``V, f, G, step, evaluations``.
    """
    hist = [f]
    evals = 0
    for it in range(max_iter):
        if float(abs(V - _pos(V - G)).max()) < pg_tol:
            break
        if it >= window and hist[-window - 1] - f < ftol * abs(f):
            break
        D = _pos(V - step * G) - V
        gd = float((G * D).sum())
        fref = max(hist[-memory:])   # nonmonotone: BB steps may raise f now and then
        lam = 1.0
        while True:
            Vn = V + lam * D
            fn, Gn = fg(Vn)
            evals += 1
            if fn <= fref + 1e-4 * lam * gd or lam < 1e-10:
                break
            lam *= 0.5
        S, Y = Vn - V, Gn - G
        sy = float((S * Y).sum())
        step = float((S * S).sum()) / sy if sy > 0 else 10.0 * step
        step = min(max(step, 1e-10), 1e10)
        V, f, G = Vn, fn, Gn
        hist.append(f)
    return V, f, G, step, evals


def solve_sdp_lowrank(A: np.ndarray, k: int, *, rank: int | None = None, tol: float = 1e-3,
                      obj_tol: float = 1e-4, max_outer: int = 60, max_inner: int = 100,
                      sigma0: float = 10.0,
                      seed: int = 0, V0: np.ndarray | None = None,
                      y0: np.ndarray | None = None, z0: float | None = None,
                      threads: int | None = 1, device: str | None = None) -> SDPResult:
    """Solve the clustering SDP approximately with ``X = V V^T``, ``V >= 0``.

    Args:
        A: ``[n, n]`` symmetric (preprocessed) affinity.
        k: number of groups, ``1 <= k <= n``.
        rank: r, columns of V (default :func:`default_rank`).
        tol: stop when ``max|X 1 - 1|`` and ``|tr X - k| / k`` are both below ``tol`` and the
            objective changed by less than ``obj_tol`` (relative) over the last multiplier
            update.
        max_outer: multiplier updates; max_inner: SPG iterations per update. Above the
            detection threshold (noisy affinities) the inner solve stalls at any cap, while the
            objective settles after a few multiplier updates. The earlier defaults (500 inner
            iterations, ``obj_tol = 1e-5``) took 17.7 s instead of 2.0 s at n = 1000 and
            108-139 s instead of 7.4 s at n = 2000 (nu = 1.5 planted affinities), for a 0.06%
            higher SDP value and the same rounded partition.
        sigma0: initial penalty (A is rescaled internally so the objective is O(n)).
        seed: seed of the spectral start (:func:`spectral_start`) used when ``V0`` is None.
        V0, y0, z0: warm start (e.g. the solution for a neighbouring k); V0 may have any
            number of columns <= rank and is padded with small random columns.
        threads: BLAS / OpenMP threads during the solve (``None``: leave as is); see
            :mod:`graphmtl.utils.threads`.
        device: ``None`` (default): numpy. ``cpu``, ``cuda``, ``cuda:N`` or ``auto``: the
            same iterations (one ``A @ V`` each) in float64 torch on that device, from the same
            numpy spectral start; the result is returned as numpy and agrees with the numpy
            path up to float rounding. At the sizes of task clustering (n in the hundreds) the
            CPU is as fast; a GPU pays off for n in the thousands.

    Returns:
        :class:`SDPResult` with ``factor = V [n, r]``, multipliers ``y [n]``, ``z`` in the units
        of ``A``, residuals ``row_sum``, ``trace``; ``iterations`` counts gradient evaluations.
    """
    n = A.shape[0]
    check(1 <= k <= n, f"k: need 1 <= k <= n = {n}, got {k}")
    r = default_rank(n, k) if rank is None else int(rank)
    check(1 <= r <= n, f"rank: need 1 <= rank <= n = {n}, got {rank}")
    t0 = time.perf_counter()
    with blas_threads(threads):
        # Rescale so that <As, X> <= n: multipliers and penalty then have a k- and n-free scale.
        lam = spectral_norm(A, seed)
        alpha = n / (k * lam) if lam > 0 else 1.0
        As = alpha * A
        if V0 is None:
            V = spectral_start(A, k, r, seed)
        else:
            V = np.maximum(np.asarray(V0, dtype=float), 0.0)[:, :r]
            if V.shape[1] < r:
                pad = np.random.default_rng(seed).random((n, r - V.shape[1]))
                V = np.hstack([V, pad * 1e-2 * np.sqrt(k / (n * r))])
            V *= np.sqrt(k / max((V * V).sum(), 1e-300))
        y = np.zeros(n) if y0 is None else np.asarray(y0, dtype=float) * alpha
        z = 0.0 if z0 is None else float(z0) * alpha
        sigma = float(sigma0)
        dev = None
        if device is not None:
            from graphmtl.utils.device import resolve_device

            dev = resolve_device(device)
        if dev is not None:   # same iterations in torch: As, V, y on the device
            import torch

            As, V, y = (torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64,
                                        device=dev) for a in (As, V, y))

        def fg(V: np.ndarray) -> tuple[float, np.ndarray]:
            AV = As @ V
            s = V.sum(0)                      # [r]  V^T 1
            c1 = V @ s - 1.0                  # [n]  X 1 - 1
            c2 = float((V * V).sum()) - k     #      tr X - k
            w = y + sigma * c1                # first-order multiplier estimate
            zz = z + sigma * c2
            f = -float((V * AV).sum()) + float(y @ c1) + z * c2 + 0.5 * sigma * (
                float(c1 @ c1) + c2 * c2)
            # d/dV of w^T V V^T 1 = w s^T + 1 (V^T w)^T; of zz ||V||^2 = 2 zz V.
            G = -2.0 * AV + _outer(w, s) + (V.T @ w)[None, :] + 2.0 * zz * V
            return f, G

        # Initial step ~ 1 / Lipschitz constant of the gradient (A term plus the penalty).
        step = 1.0 / (2.0 * (n / k) + 2.0 * sigma * n)
        prev, prev_obj, evals, viol = np.inf, np.inf, 0, np.inf
        outer = 0
        for outer in range(1, max_outer + 1):
            f, G = fg(V)
            # Inexact ALM: loose inner solves while far from feasible, tighter near the end.
            pg_tol = float(np.clip(0.1 * viol, 1e-5, 1e-3)) / np.sqrt(n / k)
            V, f, G, step, ev = _spg(fg, V, f, G, step, pg_tol, max_inner)
            evals += ev + 1
            c1 = V @ V.sum(0) - 1.0
            c2 = float((V * V).sum()) - k
            y = y + sigma * c1
            z = z + sigma * c2
            viol = max(float(abs(c1).max()), abs(c2) / k)
            obj = -float((V * (As @ V)).sum())
            if viol < tol and abs(obj - prev_obj) <= obj_tol * abs(obj):
                break
            prev_obj = obj
            if viol > 0.25 * prev:
                sigma *= 5.0
            prev = viol
        if dev is not None:
            V, y = V.cpu().numpy(), y.cpu().numpy()
        objective = float((V * (A @ V)).sum())
    return SDPResult(
        k=k, objective=objective, factor=V, y=y / alpha, z=z / alpha, N=None, X=None,
        residuals={"row_sum": float(np.abs(V @ V.sum(0) - 1.0).max()),
                   "trace": float(abs((V * V).sum() - k))},
        seconds=time.perf_counter() - t0, iterations=evals,
        status="converged" if viol < tol else "max_outer",
        info={"solver": "lowrank", "rank": r, "outer": outer, "sigma": sigma})
