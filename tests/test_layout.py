"""The package's shape: fixtures live in graphmtl.testing and the library never imports them;
curated package exports; no data location assumed."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
#: Temporary aliases of moved fixtures for scripts not updated yet (never imported by the library).
ALIASES: set[str] = set()


def test_library_never_imports_the_testing_package():
    code = ("import sys, graphmtl.pipeline, graphmtl.cli.run, graphmtl.affinity, "
            "graphmtl.clustering, graphmtl.projection, graphmtl.data, graphmtl.training; "
            "print(sorted(m for m in sys.modules if m.startswith('graphmtl.testing')"
            " or m == 'graphmtl.clustering.synthetic'))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    for path in (REPO / "graphmtl").rglob("*.py"):
        if "testing" in path.relative_to(REPO / "graphmtl").parts or \
                str(path.relative_to(REPO)) in ALIASES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("graphmtl.testing"), path
                # no private name crosses a module boundary
                if node.module.startswith("graphmtl"):
                    assert not [a.name for a in node.names
                                if a.name.startswith("_") and not a.name.startswith("__")], path


def test_fixtures_are_not_exported_by_the_library_packages():
    import graphmtl.affinity as affinity
    import graphmtl.clustering as clustering
    import graphmtl.projection as projection

    for name in ("write_synthetic_store", "planted_groups"):
        assert not hasattr(affinity, name), name
    assert clustering.__all__ == ["SDPResult", "TaskClustering", "partition_objective",
                                  "random_partition", "spectral_partition"]
    for name in ("reverse_mode_projection", "linearization_error",
                 "linearization_error_between"):
        assert name not in projection.__all__, name
    for pkg in (affinity, clustering, projection):
        assert all(hasattr(pkg, name) for name in pkg.__all__), pkg.__name__


def test_testing_package_exports(tmp_path):
    import graphmtl.testing as testing

    assert sorted(testing.__all__) == testing.__all__
    assert all(callable(getattr(testing, name)) for name in testing.__all__)
    assert testing.block_groups(7, 3).tolist() == [0, 0, 0, 1, 1, 2, 2]
    store = testing.write_synthetic_store(tmp_path / "s", n=5, d=3, train_rows=10,
                                          val_rows=10, groups=2)
    assert store.num_tasks == 5 and store.dim == 3
    A, labels = testing.planted_affinity(9, 3, noise=0.0, seed=0)
    assert np.allclose(A, A.T) and len(set(labels.tolist())) == 3
