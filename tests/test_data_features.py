"""Structural (FastRP + log-degree) features: shape, determinism, caching, meaning."""

import numpy as np
import pytest
import torch

from graphmtl.data import FeatureConfig, structural_features
from graphmtl.errors import GraphMTLError


def _two_clusters(n=60, seed=0):
    """Two dense random clusters of n nodes joined by one bridge; both directions stored."""
    rng = np.random.default_rng(seed)
    edges = []
    for base in (0, n):
        for _ in range(6 * n):
            u, v = rng.integers(0, n, 2)
            if u != v:
                edges.append((base + u, base + v))
    edges.append((0, n))
    e = np.array(edges).T
    return torch.from_numpy(np.concatenate([e, e[::-1]], axis=1)), 2 * n


def test_shape_dtype_default_128():
    ei, N = _two_clusters()
    x = structural_features(ei, N)
    assert x.shape == (N, 128) and x.dtype == torch.float32
    assert torch.isfinite(x).all()


def test_deterministic_and_seed_dependent():
    ei, N = _two_clusters()
    a = structural_features(ei, N, FeatureConfig(dim=32, seed=3))
    b = structural_features(ei, N, FeatureConfig(dim=32, seed=3))
    c = structural_features(ei, N, FeatureConfig(dim=32, seed=4))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    # column 0 is the log-degree, which does not depend on the seed
    assert torch.allclose(a[:, 0], c[:, 0])


def test_columns_standardised_and_degree_column():
    ei, N = _two_clusters()
    x = structural_features(ei, N, FeatureConfig(dim=16))
    assert torch.allclose(x.mean(0), torch.zeros(16), atol=1e-4)
    assert torch.allclose(x.std(0, unbiased=False), torch.ones(16), atol=1e-3)
    unique = torch.unique(ei, dim=1)                                   # multi-edges count once
    deg = torch.bincount(unique[0], minlength=N).double()
    assert np.corrcoef(x[:, 0].double().numpy(), np.log1p(deg.numpy()))[0, 1] > 0.999


def test_features_separate_communities():
    ei, N = _two_clusters()
    x = structural_features(ei, N, FeatureConfig(dim=64))[:, 1:]
    x = x / x.norm(dim=1, keepdim=True)
    sim = x @ x.t()
    half = N // 2
    within = (sim[:half, :half].mean() + sim[half:, half:].mean()) / 2
    across = sim[:half, half:].mean()
    assert within - across > 0.3


def test_one_direction_input_is_symmetrised_and_isolated_nodes_are_finite():
    ei, N = _two_clusters()
    one_way = ei[:, ei[0] < ei[1]]
    a = structural_features(ei, N + 3, FeatureConfig(dim=16))       # 3 isolated nodes
    b = structural_features(one_way, N + 3, FeatureConfig(dim=16))
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.isfinite(a).all()
    assert torch.allclose(a[-1, 1:], a[-2, 1:])                       # no neighbours: same row


def test_cache_written_and_reused(tmp_path):
    ei, N = _two_clusters()
    cfg = FeatureConfig(dim=16)
    a = structural_features(ei, N, cfg, cache_dir=tmp_path)
    files = list((tmp_path / "features").glob("*.npy"))
    assert len(files) == 1
    np.save(files[0], np.full((N, 16), 7.0, dtype=np.float32))       # prove the cache is read
    assert bool((structural_features(ei, N, cfg, cache_dir=tmp_path) == 7).all())
    other = structural_features(ei, N, FeatureConfig(dim=16, seed=1), cache_dir=tmp_path)
    assert not bool((other == 7).all()) and len(list((tmp_path / "features").glob("*.npy"))) == 2
    assert a.shape == other.shape


def test_weights_and_hops():
    ei, N = _two_clusters()
    a = structural_features(ei, N, FeatureConfig(dim=8, hops=2, weights=(1.0, 0.0)))
    b = structural_features(ei, N, FeatureConfig(dim=8, hops=1))
    assert torch.allclose(a, b, atol=1e-5)                            # weight 0 drops hop 2


@pytest.mark.parametrize("kwargs, match", [
    (dict(dim=1), "features dim"), (dict(hops=0), "features hops"),
    (dict(hops=2, weights=(1.0,)), "features weights"), (dict(density=0.0), "features density"),
    (dict(degree_power=0.5), "features degree_power"), (dict(seed=-1), "features seed")])
def test_config_errors(kwargs, match):
    with pytest.raises(GraphMTLError, match=match):
        FeatureConfig(**kwargs)


def test_scales_linearly_not_quadratically():
    # 200k nodes on a ring: an O(N^2) step would need 160 GB; this takes about a second.
    N = 200_000
    u = np.arange(N)
    e = np.stack([u, (u + 1) % N])
    x = structural_features(np.concatenate([e, e[::-1]], axis=1), N, FeatureConfig(dim=8))
    assert x.shape == (N, 8) and torch.isfinite(x).all()
