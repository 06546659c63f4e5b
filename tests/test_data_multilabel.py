"""BlogCatalog (.mat), Deezer (CSV + JSON) and ogbn-proteins (through ogb) loaders."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
import torch

from graphmtl.data import DataWarning, SplitConfig, load_blogcatalog, load_deezer, load_dataset
from graphmtl.data.multilabel import deezer_files, read_blogcatalog, read_deezer
from graphmtl.data.ogb_proteins import load_ogbn_proteins, proteins_dir
from graphmtl.errors import GraphMTLError

MULTI = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "multilabel"


def _need(name):
    path = MULTI / name
    if not path.is_file():
        pytest.skip(f"real multilabel data not found at {path} (../shared/datasets/multilabel)")
    return path


# ---------------------------------------------------------------------- real files
def test_blogcatalog_real_format():
    edges, y, names = read_blogcatalog(_need("blogcatalog.mat"))
    assert y.shape == (10_312, 39) and len(names) == 39
    assert edges.shape == (333_983, 2) and bool((edges[:, 0] < edges[:, 1]).all())
    assert int(y.sum(0).min()) == 8 and bool(y.any(1).all())


def test_blogcatalog_real_graph():
    g = load_blogcatalog(_need("blogcatalog.mat"), features=None)
    assert (g.num_nodes, g.num_edges, g.num_tasks) == (10_312, 333_983, 39)
    assert bool((g.train_mask | g.val_mask | g.test_mask).all())


def test_deezer_real_format():
    _need("deezer-hu.edges.csv.gz")
    edges, y, names = read_deezer(*deezer_files(MULTI / "deezer-hu"))
    assert edges.shape == (222_887, 2) and y.shape == (47_538, 84) and len(names) == 84
    assert names == sorted(names)
    assert sorted(y.sum(0).tolist())[:7] == [1, 1, 1, 2, 2, 2, 3]


def test_deezer_real_graph_drops_unsplittable_genres_with_warning():
    _need("deezer-hu.edges.csv.gz")
    with pytest.warns(DataWarning, match="dropped 6 task"):
        g = load_deezer(*deezer_files(MULTI / "deezer-hu"), features=None)
    assert (g.num_nodes, g.num_edges, g.num_tasks) == (47_538, 222_887, 78)
    with pytest.raises(GraphMTLError, match=r"only 2 positives.*set min_positives=N"):
        load_deezer(*deezer_files(MULTI / "deezer-hu"), features=None, min_positives=0)


# ---------------------------------------------------------------------- toy BlogCatalog
def _toy_mat(path, symmetric=True, loops=False, keys=("network", "group")):
    rng = np.random.default_rng(0)
    N = 40
    A = sp.random(N, N, density=0.15, random_state=1, format="csr")
    A.data[:] = 1
    if symmetric:
        A = ((A + A.T) > 0).astype(float)
    A.setdiag(1 if loops else 0)
    A.eliminate_zeros()
    G = sp.csc_matrix(rng.random((N, 3)) < 0.4, dtype=float)
    mats = {"network": sp.csc_matrix(A), "group": G}
    scipy.io.savemat(path, {k: mats[k] for k in keys})
    return A, G


def test_blogcatalog_toy_round_trip(tmp_path):
    A, G = _toy_mat(tmp_path / "x.mat")
    g = load_blogcatalog(tmp_path / "x.mat", SplitConfig(seed=2), features=None)
    assert g.num_nodes == 40 and g.task_names == ["label0", "label1", "label2"]
    assert torch.equal(g.y, torch.from_numpy(G.toarray() > 0))
    assert g.num_edges == sp.triu(A, 1).nnz


def test_blogcatalog_asymmetric_and_self_loops_warn(tmp_path):
    _toy_mat(tmp_path / "x.mat", symmetric=False, loops=True)
    with pytest.warns(DataWarning) as record:
        read_blogcatalog(tmp_path / "x.mat")
    text = " ".join(str(w.message) for w in record)
    assert "not symmetric" in text and "self-loop" in text


def test_blogcatalog_errors(tmp_path):
    _toy_mat(tmp_path / "x.mat", keys=("network",))
    with pytest.raises(GraphMTLError, match="x.mat: no 'group' matrix"):
        read_blogcatalog(tmp_path / "x.mat")
    (tmp_path / "bad.mat").write_text("not matlab")
    with pytest.raises(GraphMTLError, match="bad.mat: not a readable MATLAB"):
        read_blogcatalog(tmp_path / "bad.mat")
    with pytest.raises(GraphMTLError, match="file not found"):
        read_blogcatalog(tmp_path / "none.mat")


# ---------------------------------------------------------------------- toy Deezer
def _toy_deezer(folder, edges=None, genres=None):
    if edges is None:
        edges = "node_1,node_2\n" + "".join(f"{i},{(i + 1) % 30}\n" for i in range(30))
    if genres is None:
        genres = json.dumps({str(i): (["Pop"] if i % 2 else ["Rock"]) + (["Jazz"] if i % 3 == 0 else [])
                             for i in range(30)})
    with gzip.open(folder / "dz.edges.csv.gz", "wt") as f:
        f.write(edges)
    with gzip.open(folder / "dz.genres.json.gz", "wt") as f:
        f.write(genres)
    return folder / "dz"


def test_deezer_toy(tmp_path):
    prefix = _toy_deezer(tmp_path)
    g = load_deezer(*deezer_files(prefix), features=None)
    assert g.task_names == ["Jazz", "Pop", "Rock"] and g.num_nodes == 30 and g.num_edges == 30
    assert int(g.y[:, 0].sum()) == 10 and int(g.y[:, 2].sum()) == 15


def test_deezer_errors(tmp_path):
    prefix = _toy_deezer(tmp_path, edges="node_1,node_2\n0,1\n1;2\n")
    with pytest.raises(GraphMTLError, match=r"dz.edges.csv.gz: line 3: node id '1;2'"):
        read_deezer(*deezer_files(prefix))
    prefix = _toy_deezer(tmp_path, edges="node_1,node_2\n0,1\n1,2,3\n")
    with pytest.raises(GraphMTLError, match=r"dz.edges.csv.gz: line 3: expected 2 fields"):
        read_deezer(*deezer_files(prefix))
    prefix = _toy_deezer(tmp_path, genres='{"0": ["Pop"],\n "1": [}')
    with pytest.raises(GraphMTLError, match=r"dz.genres.json.gz: line 2: invalid JSON"):
        read_deezer(*deezer_files(prefix))
    prefix = _toy_deezer(tmp_path, genres='{"a": ["Pop"]}')
    with pytest.raises(GraphMTLError, match=r"node id 'a' is not a non-negative integer"):
        read_deezer(*deezer_files(prefix))
    prefix = _toy_deezer(tmp_path, edges="node_1,node_2\n")
    with pytest.raises(GraphMTLError, match="no edges in the file"):
        read_deezer(*deezer_files(prefix))
    with pytest.raises(GraphMTLError, match="nope.edges.csv.gz: file not found"):
        deezer_files(tmp_path / "nope")


# ---------------------------------------------------------------------- ogbn-proteins (fake)
def write_fake_proteins(root: Path, N=60, E=200, n=4, seed=0):
    """A tiny graph in ogbn-proteins' raw layout (as OGB's proteins.zip unpacks)."""
    rng = np.random.default_rng(seed)
    folder = root / "ogbn_proteins"
    (folder / "raw").mkdir(parents=True)
    (folder / "split" / "species").mkdir(parents=True)
    (folder / "RELEASE_v1.txt").write_text("fake\n")

    def csv(path, rows, fmt="%d"):
        with gzip.open(path, "wt") as f:
            np.savetxt(f, np.atleast_2d(rows), fmt=fmt, delimiter=",")

    u = rng.integers(0, N, E)
    v = (u + rng.integers(1, N, E)) % N
    csv(folder / "raw" / "edge.csv.gz", np.stack([u, v], 1))
    csv(folder / "raw" / "edge-feat.csv.gz", rng.random((E, 8)), fmt="%.3f")
    csv(folder / "raw" / "node_species.csv.gz", np.zeros((N, 1), int))
    labels = (rng.random((N, n)) < 0.4).astype(int)
    csv(folder / "raw" / "node-label.csv.gz", labels)
    csv(folder / "raw" / "num-node-list.csv.gz", np.array([[N]]))
    csv(folder / "raw" / "num-edge-list.csv.gz", np.array([[E]]))
    perm = rng.permutation(N)
    parts = {"train": perm[:30], "valid": perm[30:40], "test": perm[40:]}
    for name, idx in parts.items():
        csv(folder / "split" / "species" / f"{name}.csv.gz", idx[:, None])
    return labels, parts


def test_ogbn_proteins_through_ogb(tmp_path, capsys):
    labels, parts = write_fake_proteins(tmp_path)
    g = load_ogbn_proteins(tmp_path)
    assert capsys.readouterr().out == ""          # ogb's prints are kept off stdout
    assert g.num_tasks == 4 and g.num_nodes == 60 and g.num_features == 8
    assert torch.equal(g.y, torch.from_numpy(labels > 0))
    for ours, theirs in (("train", "train"), ("val", "valid"), ("test", "test")):
        m = g.mask(ours)
        expect = torch.zeros(60, dtype=torch.bool)
        expect[torch.from_numpy(parts[theirs])] = True
        assert torch.equal(m, expect[:, None].expand(60, 4))
    ei = g.edge_index
    assert not bool((ei[0] == ei[1]).any())
    assert set(map(tuple, ei.t().tolist())) == {(b, a) for a, b in ei.t().tolist()}
    # the dataset folder is only read: ogb's pickle cache went to a scratch folder
    assert not (tmp_path / "ogbn_proteins" / "processed").exists()
    again = load_ogbn_proteins(tmp_path)
    assert torch.equal(again.x, g.x) and torch.equal(again.edge_index, g.edge_index)


def test_ogbn_proteins_structural_features_and_spec(tmp_path):
    write_fake_proteins(tmp_path)
    g = load_dataset(f"ogb:ogbn-proteins,root={tmp_path},features=16",
                     cache_dir=tmp_path / "cache")
    assert g.num_features == 16 and g.provenance["kind"] == "ogb"


def test_ogbn_proteins_missing_files_clear_error(tmp_path):
    with pytest.raises(GraphMTLError, match=r"ogbn-proteins: no dataset at .*ogbn_proteins; "
                                            r"download http"):
        proteins_dir(tmp_path)
    (tmp_path / "ogbn_proteins").mkdir()
    with pytest.raises(GraphMTLError, match="lacks RELEASE_v1.txt"):
        proteins_dir(tmp_path)          # ogb itself would stop and ask on the terminal here
    (tmp_path / "ogbn_proteins" / "RELEASE_v1.txt").write_text("")
    with pytest.raises(GraphMTLError, match="neither raw/edge.csv.gz nor processed"):
        load_ogbn_proteins(tmp_path)
    (tmp_path / "ogbn_proteins" / "processed").mkdir()
    (tmp_path / "ogbn_proteins" / "processed" / "data_processed").write_bytes(b"pickle")
    (tmp_path / "ogbn_proteins" / "split" / "species").mkdir(parents=True)
    (tmp_path / "ogbn_proteins" / "split" / "species" / "train.csv.gz").write_bytes(b"")
    with pytest.raises(GraphMTLError, match="cannot be loaded safely"):
        load_ogbn_proteins(tmp_path)
