"""Random projection directions in parameter space, regenerated from a seed (never stored).

Grad-TAG projects per-(node, task) gradients with a random ``P in R^{p x d}`` whose entries are
``±1/sqrt(d)``. Storing ``P`` costs ``p * d`` numbers (the reference code keeps ~1 GB of float64);
here each block of ``P`` is regenerated on demand from a counter-based seed:

    P[segment of parameter ``name``, column k] = ±1/sqrt(d), with the signs drawn by a
    ``torch.Generator`` seeded with ``sha256(seed, k, name)``.

So column ``k`` restricted to one parameter tensor depends only on ``(seed, k, name)``: the same
seed gives the same directions in any chunking of ``k``, and the head's part of a direction is the
same whether or not the encoder is projected too (``z_all = z_encoder + z_head`` exactly).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import nn

from graphmtl.errors import GraphMTLError, check

PARAM_SETS = ("all", "encoder", "head")


def select_parameters(model: nn.Module, params: str = "all") -> list[str]:
    """Names of the projected parameters of ``model``, in ``named_parameters()`` order.

    Args:
        model: a :class:`~graphmtl.models.MultiTaskGNN` (any module with ``encoder.*`` and
            ``head.*`` parameters).
        params: ``all``; ``encoder`` (everything but the head); ``head`` (the output layer only);
            or ``re:<regex>`` — the parameters whose name matches ``<regex>`` (``re.search``).

    Raises:
        GraphMTLError: unknown set, bad regex, or a selection with no parameter.
    """
    names = [name for name, p in model.named_parameters()]
    if params == "all":
        chosen = names
    elif params == "encoder":
        chosen = [n for n in names if not n.startswith("head.")]
    elif params == "head":
        chosen = [n for n in names if n.startswith("head.")]
    else:
        check(params.startswith("re:"),
              f"projection params: expected all, encoder, head or re:<regex>, got {params!r}")
        try:
            pattern = re.compile(params[3:])
        except re.error as e:
            raise GraphMTLError(f"projection params: invalid regex {params[3:]!r} ({e})") from None
        chosen = [n for n in names if pattern.search(n)]
    check(len(chosen) > 0, f"projection params {params!r}: selects no parameter of the model")
    return chosen


def _block_seed(seed: int, k: int, name: str) -> int:
    digest = hashlib.sha256(f"graphmtl.directions/{seed}/{k}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@dataclass(frozen=True)
class Directions:
    """The ``d`` random directions over a fixed list of parameters.

    Args:
        shapes: ``{name: shape}`` of the projected parameters, in a fixed order.
        dim: number of directions ``d``.
        seed: integer seed.

    ``block(name, lo, hi)`` is ``P``'s columns ``lo:hi`` restricted to parameter ``name``, shaped
    ``[hi - lo, *shape]`` (float32). Nothing is cached: every call regenerates.
    """

    shapes: dict[str, tuple[int, ...]]
    dim: int
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.dim >= 1, f"projection dim: must be >= 1, got {self.dim}")
        check(len(self.shapes) > 0, "projection: no parameters to project")

    @classmethod
    def for_model(cls, model: nn.Module, dim: int, seed: int = 0,
                  params: str = "all") -> "Directions":
        """Directions over the parameters of ``model`` chosen by ``params`` (see
        :func:`select_parameters`)."""
        named = dict(model.named_parameters())
        return cls({n: tuple(named[n].shape) for n in select_parameters(model, params)},
                   int(dim), int(seed))

    @property
    def names(self) -> list[str]:
        return list(self.shapes)

    @property
    def num_params(self) -> int:
        """``p``, the number of projected scalars."""
        return sum(math.prod(s) for s in self.shapes.values())

    @property
    def scale(self) -> float:
        return 1.0 / math.sqrt(self.dim)

    def block(self, name: str, lo: int, hi: int, dtype: torch.dtype = torch.float32
              ) -> torch.Tensor:
        """Columns ``lo:hi`` of ``P`` on parameter ``name``: ``[hi - lo, *shape]`` of ±1/sqrt(d)."""
        check(0 <= lo <= hi <= self.dim, f"direction range {lo}:{hi} outside 0:{self.dim}")
        shape = self.shapes[name]
        numel = math.prod(shape)
        out = torch.empty((hi - lo, numel), dtype=dtype)
        gen = torch.Generator()
        s = self.scale
        for i, k in enumerate(range(lo, hi)):
            gen.manual_seed(_block_seed(self.seed, k, name))
            out[i].random_(0, 2, generator=gen)  # uniform bits {0, 1}, drawn in place
        # bits in {0, 1} -> {-s, +s} (exact in float32 and float64)
        return out.mul_(2 * s).sub_(s).view(hi - lo, *shape)

    def chunk(self, lo: int, hi: int, dtype: torch.dtype = torch.float32
              ) -> dict[str, torch.Tensor]:
        """Columns ``lo:hi`` on every projected parameter: ``{name: [hi - lo, *shape]}``."""
        return {name: self.block(name, lo, hi, dtype) for name in self.shapes}

    def chunks(self, size: int) -> Iterator[tuple[int, int]]:
        """``(lo, hi)`` ranges covering ``0:d`` in steps of ``size``."""
        check(size >= 1, f"direction chunk: must be >= 1, got {size}")
        for lo in range(0, self.dim, size):
            yield lo, min(self.dim, lo + size)

    def matrix(self, dtype: torch.dtype = torch.float32, chunk: int = 32) -> torch.Tensor:
        """The dense ``P`` as ``[p, d]`` (parameters flattened in order). For tests and the
        reference-approach benchmark only — this is exactly what the engine avoids."""
        cols = []
        for lo, hi in self.chunks(chunk):
            blocks = self.chunk(lo, hi, dtype)
            cols.append(torch.cat([b.reshape(hi - lo, -1) for b in blocks.values()], dim=1))
        return torch.cat(cols, dim=0).T.contiguous()

    def combine(self, w: torch.Tensor | Sequence[float], chunk: int = 32
                ) -> dict[str, torch.Tensor]:
        """``P w`` as ``{name: tensor of the parameter's shape}`` (float64 accumulation).

        Args:
            w: ``[d]`` coefficients.
        """
        w = torch.as_tensor(w, dtype=torch.float64).reshape(-1)
        check(w.numel() == self.dim, f"direction weights: expected {self.dim} values, got {w.numel()}")
        out = {n: torch.zeros(s, dtype=torch.float64) for n, s in self.shapes.items()}
        for lo, hi in self.chunks(chunk):
            for name in self.shapes:
                blk = self.block(name, lo, hi, torch.float64)
                out[name] += torch.tensordot(w[lo:hi], blk, dims=1)
        return out

    def apply(self, model: nn.Module, w: torch.Tensor | Sequence[float], inplace: bool = False
              ) -> nn.Module:
        """The model at ``theta0 + P w`` (a deep copy unless ``inplace``)."""
        import copy

        target = model if inplace else copy.deepcopy(model)
        named = dict(target.named_parameters())
        missing = [n for n in self.shapes if n not in named or tuple(named[n].shape) != self.shapes[n]]
        check(not missing, f"apply directions: model has no parameter {missing[:1]} of the "
                           "projected shape")
        delta = self.combine(w)
        with torch.no_grad():
            for name, dv in delta.items():
                named[name].add_(dv.to(named[name].dtype))
        return target

    def to_dict(self) -> dict:
        return {"dim": self.dim, "seed": self.seed, "names": self.names,
                "num_params": self.num_params,
                "scheme": "(2 * bits - 1) / sqrt(d), bits = Tensor.random_(0, 2) of a torch.Generator "
                          "seeded with sha256(seed/k/name), per parameter block"}
