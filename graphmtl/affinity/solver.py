"""All subset logistic regressions of Grad-TAG solved as one batched computation.

For every subset ``S_k`` (row ``k`` of a membership matrix ``M`` ``[m, n]``) we solve, exactly,

    ŵ_k = argmin_w  L_k(w),
    L_k(w) = (1 / W_k) Σ_{t∈S_k} Σ_{rows r of t} ω_r · BCE(f0_r + ⟨z_r, w⟩, y_r)  +  (λ/2) ‖w‖²,

with ``ω_r`` the row weight of the store (inverse sampling probability) and
``W_k = Σ_{t∈S_k} Σ_r ω_r`` the subset's total row weight.

**How λ scales with row counts.** The data term is a weighted *mean* over the subset's rows, so λ
does not depend on how many rows a subset has: a subset of 10 tasks and one of 2 tasks are
regularised alike, and subsampling rows (with weights) leaves the problem unchanged in
expectation. Equivalently, in scikit-learn's parametrisation ``½‖w‖² + C Σ ω_r BCE_r`` the
subset's ``C = 1 / (λ W_k)``. With ``lam_relative=True`` (the default) the λ used is
``lam × tr(H₀)/d``, where ``H₀ = Σ_t G_t / Σ_t W_t`` is the pooled data curvature at ``w = 0`` over
all tasks: λ is then a fraction of the average curvature eigenvalue and does not depend on the
scale of the projected gradients; the value actually used is reported as ``SubsetFit.lam``.
It is the same for every subset, so subsets stay comparable. The default ``lam = 1`` (λ equal to
the mean curvature eigenvalue) is what matched fine-tuned subset models best on YouTube-100,
Amazon-100 and a planted graph (``experiments/bench_affinity_fidelity.py``; weaker L2 lets the
linearised fit move far outside the region where the linearisation holds).

**Algorithm (one batched computation over subsets).** Rows of task ``t`` are shared by every
subset containing ``t``, so the logits of all those ``m_t`` subsets are one product
``Z_t @ W[cols_t]ᵀ`` (``[r_t, d] × [d, m_t]``), and their gradient contributions one product
``Rᵀ Z_t``; the loop runs over the ``n`` tasks (a few large matrix products each), never over
subsets, and never calls a solver per subset.

1. Per-task Gram matrices at ``w = 0``: ``G_t = Z_tᵀ diag(ω σ'(f0)) Z_t`` ``[n, d, d]``.
2. Preconditioner ``H_k = (Σ_{t∈S_k} G_t) / W_k + λ I`` — this is the *exact* Hessian at
   ``w = 0`` — assembled as a sparse product ``M Gflat`` and factorised by batched Cholesky
   ``[m, d, d]`` (in chunks of subsets).
3. Newton's method with exact gradients: the first step ``-H_k⁻¹ g_k(0)`` is the exact Newton
   step; later steps solve ``H(w) p = -g`` by preconditioned conjugate gradients with exact
   Hessian-vector products (same per-task products as the gradient) and ``H_k`` as the
   preconditioner. Because ŵ is small under the L2 term, ``H(w) ≈ H_k`` and CG needs 1–3
   iterations; Newton converges quadratically. Armijo backtracking guards each step. Subsets
   stop (and drop out of the products) once ``max|∇L_k| ≤ tol``.

**FLOPs** (``R = Σ r_t`` train rows, ``ρ = Σ_t r_t m_t`` row-subset incidences,
``≈ R·m·s/n`` for uniform subsets of size ``s``):
  Gram ``2 R d²`` (once) · assembly ``m s d²`` · Cholesky ``m d³ / 3`` · each gradient or
  Hessian-vector product ``4 ρ d`` · each preconditioner solve ``2 m d²``.
At n = 500, m = 2000, s = 10, d = 200, 1,500 train rows per task: Gram 6.0e10, Cholesky 5.3e9,
one gradient 2.4e10; a typical solve (4 gradients + 6 HVPs) ≈ 3e11 FLOPs. Forming the exact
Hessian per subset instead would cost ``2 ρ d² ≈ 2.4e12`` per Newton step, which is why the
w = 0 Grams serve as the preconditioner rather than as the Hessian. The counted FLOPs of a run are
returned in ``SubsetFit.flops``.

All products run in float64 (the store's float32 ``z`` converts exactly), so the solution agrees
with a reference solver on the same objective to its tolerance (see the tests).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from graphmtl.affinity.blocks import BlockRunner, SubsetLayout, exact_softplus
from graphmtl.affinity.rows import SplitRows
from graphmtl.errors import GraphMTLError, check
from graphmtl.utils.threads import torch_threads


def relative_lambda(rows: SplitRows, lam: float) -> float:
    """``lam × tr(H₀)/d`` with ``H₀ = Σ_r ω_r σ'(f0_r) z_r z_rᵀ / Σ_r ω_r`` (all tasks' rows)."""
    s = torch.sigmoid(rows.f0)
    curv = rows.weight * s * (1 - s)
    sq = torch.cat([(rows.zblock(t) ** 2).sum(1) for t in range(rows.num_tasks)])
    scale = float(curv @ sq) / (rows.dim * float(rows.weight.sum()))
    check(scale > 0, "lambda: the store's gradients are all zero, a relative lambda is 0")
    return float(lam) * scale


# --------------------------------------------------------------------------------- solver
@dataclass(frozen=True)
class SolverConfig:
    """Settings of :class:`BatchedSubsetSolver`.

    Args:
        lam: L2 strength λ of the mean-loss objective (see the module docstring).
        lam_relative: multiply ``lam`` by the mean curvature eigenvalue ``tr(H₀)/d``.
        tol: stop a subset when the max-abs gradient of its objective is ``<= tol``.
        max_newton: Newton iterations at most; subsets not converged then are reported.
        max_cg: conjugate-gradient iterations per Newton step at most.
        chunk: subsets per batched Cholesky (memory ``chunk × d² × 8`` bytes per chunk; the
            factors of all subsets, ``m × d² × 8`` bytes, are kept).
        workers: threads over task blocks (default: torch's intra-op thread count).
        mixed_precision: compute the Gram matrices and the Hessian-vector products inside CG in
            float32 (about twice as fast). They only shape the search directions; gradients,
            line search and the stopping test stay in float64, so the solution's accuracy is
            still set by ``tol`` (tested against scipy). Costs a float32 copy of ``z``.
        device: where the products run: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``. On a GPU the
            rows are copied there once, task blocks run in one thread (``workers`` is ignored)
            and the results come back to the CPU; they equal the CPU ones to ``tol``.
    """

    lam: float = 1.0
    lam_relative: bool = True
    tol: float = 1e-8
    max_newton: int = 30
    max_cg: int = 25
    chunk: int = 128
    workers: int | None = None
    mixed_precision: bool = True
    device: str = "cpu"

    def __post_init__(self) -> None:
        from graphmtl.utils.device import validate_device

        object.__setattr__(self, "device", validate_device(self.device))
        check(self.lam > 0 and math.isfinite(self.lam), f"lambda: must be > 0, got {self.lam}")
        check(self.tol > 0, f"solver tol: must be > 0, got {self.tol}")
        check(self.max_newton >= 1, f"solver max_newton: must be >= 1, got {self.max_newton}")
        check(self.max_cg >= 1, f"solver max_cg: must be >= 1, got {self.max_cg}")
        check(self.chunk >= 1, f"solver chunk: must be >= 1, got {self.chunk}")
        check(self.workers is None or self.workers >= 1,
              f"solver workers: must be >= 1, got {self.workers}")


@dataclass
class SubsetFit:
    """Result of :meth:`BatchedSubsetSolver.fit`.

    Attributes:
        weights: ``[m, d]`` the solutions ŵ_k.
        objective: ``[m]`` L_k(ŵ_k); grad_norm: ``[m]`` max-abs gradient at ŵ_k.
        converged: bool ``[m]``.
        lam: the λ used (after ``lam_relative`` scaling).
        newton_iters: Newton iterations run; grad_evals, hvp_evals: batched passes;
        shortened_steps: (subset, iteration) steps the line search shortened.
        flops: counted floating-point operations (matrix products) by phase.
        seconds: wall time by phase.
    """

    weights: torch.Tensor
    objective: torch.Tensor
    grad_norm: torch.Tensor
    converged: torch.Tensor
    lam: float
    newton_iters: int = 0
    grad_evals: int = 0
    hvp_evals: int = 0
    flops: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    shortened_steps: int = 0

    def cpu(self) -> "SubsetFit":
        """The tensors on the CPU (in place; returns self)."""
        for name in ("weights", "objective", "grad_norm", "converged"):
            setattr(self, name, getattr(self, name).cpu())
        return self

    def summary(self) -> dict:
        return {"lam": self.lam, "newton_iters": self.newton_iters,
                "grad_evals": self.grad_evals, "hvp_evals": self.hvp_evals,
                "shortened_steps": self.shortened_steps, "converged": int(self.converged.sum()), "subsets": int(self.converged.numel()),
                "max_grad_norm": float(self.grad_norm.max()),
                "total_flops": int(sum(self.flops.values())), "flops": dict(self.flops),
                "seconds": dict(self.seconds)}


class BatchedSubsetSolver:
    """Solve the offset logistic regressions of all subsets at once (see the module docstring).

    Example::

        rows = SplitRows.from_store(ProjectionStore(path), "train")
        fit = BatchedSubsetSolver(SolverConfig(lam=1.0)).fit(rows, M)   # M: bool [m, n]
        fit.weights  # [m, d]
    """

    def __init__(self, config: SolverConfig | None = None):
        self.config = config or SolverConfig()

    # ------------------------------------------------------------------ batched kernels
    def _grad(self, W: torch.Tensor, lay: SubsetLayout, ws: torch.Tensor):
        """Gradient ``[a, d]`` and per-block curvatures ``ω σ'(u)`` ``[r_t, m_t]`` at ``W``."""
        rows, d = self._rows, W.shape[1]
        Wg = W[lay.flat]

        def block(blk):
            t, a, b = blk
            sl = rows.task(t)
            Z = rows.zblock(t)
            p = torch.sigmoid(torch.addmm(rows.f0[sl, None], Z, Wg[a:b].T))  # [r_t, m_t]
            om = rows.weight[sl, None]
            D = om * p * (1.0 - p)
            return (om * (p - rows.y[sl, None])).T @ Z, D.to(self._low)

        out = self._runner.map(block, lay.blocks, self._cost(lay))
        self._flops["grad"] += 4 * d * self._incidences(lay)
        self._grad_evals += 1
        grad = lay.scatter([o[0] for o in out], W) / ws[:, None] + self._lam * W
        return grad, [o[1] for o in out]

    def _loss(self, W: torch.Tensor, lay: SubsetLayout, ws: torch.Tensor) -> torch.Tensor:
        """Objective ``[a]`` at ``W`` (one product per block; used for reporting)."""
        rows, d = self._rows, W.shape[1]
        Wg = W[lay.flat]

        def block(blk):
            t, a, b = blk
            sl = rows.task(t)
            u = torch.addmm(rows.f0[sl, None], rows.zblock(t), Wg[a:b].T)
            return rows.weight[sl] @ (exact_softplus(u) - rows.y[sl, None] * u)

        out = self._runner.map(block, lay.blocks, self._cost(lay))
        self._flops["loss"] += 2 * d * self._incidences(lay)
        return lay.scatter(out, W[:, 0]) / ws + 0.5 * self._lam * (W * W).sum(1)

    def _hvp(self, V: torch.Tensor, lay: SubsetLayout, curv, ws) -> torch.Tensor:
        """Hessian-vector products ``[a, d]`` at the point where ``curv`` was taken."""
        rows, d = self._rows, V.shape[1]
        low = self._low
        Vg = V[lay.flat].to(low)

        def block(i):
            t, a, b = lay.blocks[i]
            Z = rows.z[rows.task(t)].to(low)
            return (curv[i] * (Z @ Vg[a:b].T)).T @ Z

        out = self._runner.map(block, list(range(len(lay.blocks))), self._cost(lay))
        self._flops["hvp"] += 4 * d * self._incidences(lay)
        self._hvp_evals += 1
        Hv = lay.scatter(out, torch.empty(0, d, dtype=low, device=V.device)).to(V.dtype)
        return Hv / ws[:, None] + self._lam * V

    def _cost(self, lay: SubsetLayout) -> list[float]:
        counts = self._rows.counts
        return [float(counts[t] * (b - a)) for t, a, b in lay.blocks]

    def _incidences(self, lay: SubsetLayout) -> int:
        counts = self._rows.counts
        return int(sum(int(counts[t]) * (b - a) for t, a, b in lay.blocks))

    def _precond(self, L: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        self._flops["precond"] += 2 * r.shape[0] * r.shape[1] ** 2
        return torch.cholesky_solve(r.unsqueeze(-1), L).squeeze(-1)

    # ----------------------------------------------------------------------------- fit
    def fit(self, rows: SplitRows, M: np.ndarray | torch.Tensor,
            task_names: Sequence[str] | None = None) -> SubsetFit:
        """Solve every subset of ``M`` (bool ``[m, n]`` over ``rows``' tasks).

        Subsets with no train rows at all are an error naming them; subsets still above ``tol``
        after ``max_newton`` iterations are reported with a warning naming their tasks.
        """
        from graphmtl.utils.device import resolve_device

        dev = resolve_device(self.config.device)
        workers = self.config.workers or torch.get_num_threads()
        # A GPU runs the per-task products itself: one host thread keeps them in stream order.
        self._runner = BlockRunner(workers if dev.type == "cpu" else 1)
        try:
            with torch_threads(1 if dev.type == "cpu" else torch.get_num_threads()):
                M_t = torch.as_tensor(np.asarray(M, dtype=bool)).to(dev)
                return self._fit(rows.to(dev), M_t, task_names).cpu()
        finally:
            self._runner.close()
            self._rows = None

    def _fit(self, rows: SplitRows, M: torch.Tensor, task_names) -> SubsetFit:
        cfg = self.config
        self._rows = rows
        self._flops = {"gram": 0, "assembly": 0, "cholesky": 0, "grad": 0, "hvp": 0,
                       "precond": 0, "loss": 0}
        self._grad_evals = self._hvp_evals = self._backtracked = 0
        seconds: dict[str, float] = {}
        names = list(task_names) if task_names is not None else rows.task_names
        m, n = M.shape
        check(n == rows.num_tasks,
              f"subsets: membership matrix has {n} tasks, the rows have {rows.num_tasks}")
        dtype, d = rows.dtype, rows.dim
        Mf = M.to(dtype)

        # Subset total weights W_k.
        wsum_t = rows.weight_sums()
        ws = Mf @ wsum_t
        empty = (ws <= 0).nonzero().flatten()
        if empty.numel():
            k = int(empty[0])
            tasks = [names[i] for i in M[k].nonzero().flatten().tolist()]
            raise GraphMTLError(f"subset {k} (tasks {', '.join(tasks[:5])}): no train rows with "
                                f"positive weight in the store")

        # 1. Per-task Grams at w = 0 (the curvature there is ω σ'(f0)).
        t0 = time.perf_counter()
        s0 = torch.sigmoid(rows.f0)
        D0 = rows.weight * s0 * (1 - s0)

        low = torch.float32 if cfg.mixed_precision else dtype
        self._low = low
        D0low = D0.to(low)

        def gram(t):
            sl = rows.task(t)
            Z = rows.z[sl].to(low)
            return (Z * D0low[sl, None]).T @ Z

        G = torch.stack(self._runner.map(gram, list(range(n)), [float(c) for c in rows.counts])
                        ).to(dtype)
        self._flops["gram"] = 2 * rows.z.shape[0] * d * d
        lam = relative_lambda(rows, cfg.lam) if cfg.lam_relative else float(cfg.lam)
        self._lam = lam
        seconds["gram"] = time.perf_counter() - t0

        # 2. Preconditioner H_k = Σ_{t∈S_k} G_t / W_k + λI, factorised by batched Cholesky.
        t0 = time.perf_counter()
        Gflat = G.reshape(n, d * d)
        dev = rows.f0.device
        L = torch.empty(m, d, d, dtype=dtype, device=dev)
        eye = torch.eye(d, dtype=dtype, device=dev)

        def factor(a):
            b = min(m, a + cfg.chunk)
            with warnings.catch_warnings():  # "sparse CSR support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                H = (Mf[a:b].to_sparse_csr() @ Gflat).reshape(b - a, d, d)
            H = H / ws[a:b, None, None] + lam * eye
            L[a:b], info = torch.linalg.cholesky_ex(H)
            return a + int((info != 0).nonzero()[0, 0]) if bool((info != 0).any()) else -1

        starts = list(range(0, m, cfg.chunk))
        bad = [k for k in self._runner.map(factor, starts, [1.0] * len(starts)) if k >= 0]
        if bad:  # cannot happen with λ > 0 short of overflow
            raise GraphMTLError(f"subset {bad[0]}: preconditioner is not positive definite "
                                f"(non-finite or huge gradients in the store?)")
        del G, Gflat
        self._flops["assembly"] = int(M.sum()) * d * d
        self._flops["cholesky"] = m * d ** 3 // 3
        seconds["factorize"] = time.perf_counter() - t0

        # 3. Newton / preconditioned Newton-CG on the active subsets.
        t0 = time.perf_counter()
        W = torch.zeros(m, d, dtype=dtype, device=dev)
        gnorm = torch.full((m,), float("inf"), dtype=dtype, device=dev)
        active = torch.arange(m, device=dev)
        lay = SubsetLayout.build(M, rows.counts)
        Wa, wsa, La = W, ws, L
        g, curv = self._grad(Wa, lay, wsa)
        it = 0
        while True:
            gmax = g.abs().amax(1)
            gnorm[active] = gmax
            keep = gmax > cfg.tol
            if not bool(keep.any()) or it == cfg.max_newton:
                break
            it += 1
            if not bool(keep.all()):  # drop converged subsets from the products
                active, Wa, g, wsa, La = active[keep], Wa[keep], g[keep], wsa[keep], La[keep]
                lay, curv = lay.compact(keep, curv)
            if it == 1:
                step = -self._precond(La, g)  # exact Newton step: H(0) is the preconditioner
            else:
                step = self._pcg(g, lay, curv, wsa, La)
            Wa, g, curv = self._line_search(lay, Wa, g, step, wsa)
            W[active] = Wa
        seconds["newton"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        obj = self._loss(W, SubsetLayout.build(M, rows.counts), ws)
        seconds["objective"] = time.perf_counter() - t0

        converged = gnorm <= cfg.tol
        if not bool(converged.all()):
            bad = (~converged).nonzero().flatten().tolist()
            k = bad[0]
            tasks = [names[i] for i in M[k].nonzero().flatten().tolist()]
            warnings.warn(f"{len(bad)} of {m} subsets did not converge in {cfg.max_newton} "
                          f"Newton iterations (max |gradient| {float(gnorm.max()):.2e} > tol "
                          f"{cfg.tol:g}); first: subset {k} (tasks {', '.join(tasks[:10])})",
                          RuntimeWarning, stacklevel=3)
        return SubsetFit(weights=W, objective=obj, grad_norm=gnorm, converged=converged, lam=lam,
                         newton_iters=it, grad_evals=self._grad_evals,
                         hvp_evals=self._hvp_evals, flops=dict(self._flops), seconds=seconds,
                         shortened_steps=self._backtracked)

    def _pcg(self, g, lay, curv, ws, L):
        """Batched preconditioned CG for ``H(w) p = -g``, per-subset forcing ``η = min(.1, √|g|)``."""
        x = torch.zeros_like(g)
        r = -g
        zr = self._precond(L, r)
        p = zr.clone()
        rz = (r * zr).sum(1)
        gn = g.norm(dim=1)
        target = torch.minimum(torch.full_like(gn, 0.1), gn.sqrt()) * gn
        done = torch.zeros(g.shape[0], dtype=torch.bool, device=g.device)
        for _ in range(self.config.max_cg):
            Hp = self._hvp(p, lay, curv, ws)
            alpha = torch.where(done, torch.zeros_like(rz), rz / (p * Hp).sum(1))
            x += alpha[:, None] * p
            r -= alpha[:, None] * Hp
            done |= r.norm(dim=1) <= target
            if bool(done.all()):
                break
            zr = self._precond(L, r)
            rz_new = (r * zr).sum(1)
            beta = torch.where(done, torch.zeros_like(rz), rz_new / rz)
            p = zr + beta[:, None] * p
            rz = torch.where(done, rz, rz_new)
        return x

    def _line_search(self, lay, Wa, g, step, ws):
        """Step length from directional derivatives only (no loss evaluations).

        Along a descent direction ``p`` the objective ``φ(α) = L(w + αp)`` is convex, so
        ``φ'(α) <= 0`` guarantees ``φ(α) < φ(0)``; the full step is accepted when
        ``φ'(1) <= ½|φ'(0)|`` (the usual case for a Newton step); otherwise the step is
        shortened by a safeguarded secant step on ``φ'`` for those subsets only, and the gradient
        of all active subsets is re-evaluated at the accepted points.
        """
        d0 = (g * step).sum(1)  # φ'(0) < 0
        g1, curv = self._grad(Wa + step, lay, ws)
        d1 = (g1 * step).sum(1)
        ok = d1 <= 0.5 * d0.abs()
        if bool(ok.all()):
            return Wa + step, g1, curv
        alpha = torch.ones_like(d0)
        lo, dlo = torch.zeros_like(d0), d0.clone()
        hi, dhi = alpha.clone(), d1
        for _ in range(30):
            bad = ~ok
            # secant root of φ' between lo and hi, kept inside [lo + 5%, hi - 5%] of the bracket
            sec = lo - dlo * (hi - lo) / (dhi - dlo)
            width = hi - lo
            alpha = torch.where(bad, torch.clamp(sec, lo + 0.05 * width, hi - 0.05 * width),
                                alpha)
            idx = bad.nonzero().flatten()
            sub = SubsetLayout.build(self._sub_membership(lay, idx), self._rows.counts)
            gi, _ = self._grad(Wa[idx] + alpha[idx, None] * step[idx], sub, ws[idx])
            di = (gi * step[idx]).sum(1)
            done_i = di.abs() <= 0.5 * d0[idx].abs()
            ok[idx[done_i]] = True
            # shrink the bracket of the others
            neg = di < 0
            lo[idx[neg]], dlo[idx[neg]] = alpha[idx[neg]], di[neg]
            hi[idx[~neg]], dhi[idx[~neg]] = alpha[idx[~neg]], di[~neg]
            if bool(ok.all()):
                break
        Wn = Wa + alpha[:, None] * step
        g, curv = self._grad(Wn, lay, ws)
        self._backtracked += int((alpha < 1).sum())
        return Wn, g, curv

    def _sub_membership(self, lay: SubsetLayout, idx: torch.Tensor) -> torch.Tensor:
        """Membership ``[len(idx), n]`` of the local subsets ``idx`` (rebuilt from a layout)."""
        M = torch.zeros(lay.size, self._rows.num_tasks, dtype=torch.bool,
                        device=lay.flat.device)
        for t, a, b in lay.blocks:
            M[lay.flat[a:b], t] = True
        return M[idx]
