"""SNAP loader: the recipe of docs/data.md on the shared files, and every bad-input case."""

import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from graphmtl.data import DataWarning, FeatureConfig, SnapRecipe, SplitConfig, load_snap
from graphmtl.data.snap import (largest_communities, read_communities, read_snap_graph,
                                snap_files)
from graphmtl.errors import GraphMTLError

SNAP = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "snap"


def _need(name, communities="top5000"):
    if not (SNAP / f"com-{name}.ungraph.txt.gz").is_file():
        pytest.skip(f"real SNAP data not found at {SNAP} (../shared/datasets/snap)")
    return snap_files(SNAP / f"com-{name}", communities)


# ---------------------------------------------------------------------- toy files
def write_toy(folder: Path, *, gz: bool = True, edges: str | None = None,
              cmty: str | None = None, name: str = "com-toy") -> Path:
    """A 40-node toy SNAP dataset: a ring plus chords; 4 communities of sizes 12, 10, 10, 6."""
    folder.mkdir(parents=True, exist_ok=True)
    if edges is None:
        pairs = [(i, (i + 1) % 40) for i in range(40)] + [(i, (i + 7) % 40) for i in range(0, 40, 3)]
        edges = "# Undirected graph: toy\n# FromNodeId\tToNodeId\n" + "".join(
            f"{u}\t{v}\n" for u, v in pairs)
    if cmty is None:
        cmty = "\n".join("\t".join(str(v) for v in c) for c in (
            range(0, 12), range(10, 20), range(20, 30), range(30, 36))) + "\n"
    opener = (lambda p: gzip.open(p, "wt")) if gz else (lambda p: open(p, "w"))
    ext = ".gz" if gz else ""
    with opener(folder / f"{name}.ungraph.txt{ext}") as f:
        f.write(edges)
    with opener(folder / f"{name}.top5000.cmty.txt{ext}") as f:
        f.write(cmty)
    return folder / name


def _toy_load(prefix, **kw):
    recipe = SnapRecipe(k=kw.pop("k", 3), split=kw.pop("split", SplitConfig()))
    return load_snap(*snap_files(prefix), recipe, kw.pop("features", None), **kw)


# ---------------------------------------------------------------------- real data: recipe sizes
@pytest.fixture(scope="module")
def dblp100():
    g, c = _need("dblp")
    return load_snap(g, c, SnapRecipe(k=100), features=None)


@pytest.mark.slow
def test_recipe_dblp_100_sizes(dblp100):
    assert (dblp100.num_nodes, dblp100.num_edges, dblp100.num_tasks) == (57_367, 209_833, 100)


def test_recipe_youtube_100_sizes():
    g = load_snap(*_need("youtube"), SnapRecipe(k=100), features=None)
    assert (g.num_nodes, g.num_edges, g.num_tasks) == (16_751, 104_513, 100)
    # Every node of the union is a member of at least one chosen community.
    assert bool(g.y.any(1).all())
    assert g.provenance["recipe"]["ties"] == "reference"


def test_recipe_amazon_sizes_as_the_shared_file_gives_them():
    # The shared com-amazon top5000 file has its duplicate lines removed (1,517 distinct
    # communities), so k=100 takes 100 distinct communities: 4,336 nodes / 14,100 edges. The
    # reference 3,225 / 10,262 ("duplicates kept") equals the union of the 61 largest distinct
    # communities here, i.e. the top 100 lines of a file where 39 of them were repeats.
    g, c = _need("amazon")
    assert read_communities(c).num_communities == 1517
    full = load_snap(g, c, SnapRecipe(k=100), features=None)
    assert (full.num_nodes, full.num_edges) == (4_336, 14_100)
    g61 = load_snap(g, c, SnapRecipe(k=61), features=None)
    assert (g61.num_nodes, g61.num_edges) == (3_225, 10_262)


def test_papers_label_scarce_protocol_on_amazon():
    # Amazon: 2 training positives per community; negatives keep 20 / 20 / 60.
    g = load_snap(*_need("amazon"), SnapRecipe(k=100, split=SplitConfig(train_pos=2)),
                  features=None)
    assert torch.equal((g.train_mask & g.y).sum(0), torch.full((100,), 2))
    neg = g.num_nodes - g.y.sum(0)
    assert torch.equal((g.train_mask & ~g.y).sum(0), torch.round(0.2 * neg.double()).long())
    assert g.provenance["split"]["train_pos"] == 2


def test_reference_tie_rule_equals_numpy_argsort_idiom_and_differs_from_first():
    g, c = _need("youtube")
    sizes = read_communities(c).sizes
    ref = largest_communities(sizes, 100, "reference")
    assert set(ref.tolist()) == set(np.argsort(sizes)[-100:].tolist())
    first = largest_communities(sizes, 100, "first")
    assert set(ref.tolist()) != set(first.tolist())          # the file has a tie at rank 100
    assert sorted(sizes[ref].tolist()) == sorted(sizes[first].tolist())
    g_first = load_snap(g, c, SnapRecipe(k=100, ties="first"), features=None)
    assert g_first.num_nodes == 16_793                      # a different tied community


@pytest.mark.slow
def test_real_splits_disjoint_cover_and_fractions(dblp100):
    g = dblp100
    tr, va, te = g.train_mask, g.val_mask, g.test_mask
    assert not (tr & va).any() and not (tr & te).any() and not (va & te).any()
    assert bool((tr | va | te).all())                        # every node labelled for every task
    pos = g.y.sum(0)
    neg = g.num_nodes - pos
    for mask, frac in ((tr, 0.2), (va, 0.2)):
        assert torch.equal((mask & g.y).sum(0), torch.round(frac * pos.double()).long())
        assert torch.equal((mask & ~g.y).sum(0), torch.round(frac * neg.double()).long())


def test_tasks_largest_first_and_named_by_line():
    g, c = _need("amazon")
    graph = load_snap(g, c, SnapRecipe(k=20), features=None)
    sizes = graph.y.sum(0)
    assert bool((sizes[:-1] >= sizes[1:]).all())
    comms = read_communities(c)
    for name, size in zip(graph.task_names, sizes.tolist()):
        line = int(name[1:])
        idx = int(np.flatnonzero(comms.line == line)[0])
        assert comms.sizes[idx] == size


def test_parse_speed_on_dblp():
    import time

    g, _ = _need("dblp")
    start = time.perf_counter()
    edges = read_snap_graph(g)
    assert edges.shape == (1_049_866, 2)
    assert time.perf_counter() - start < 10  # vectorised parsing (~1 s on an idle core)


# ---------------------------------------------------------------------- toy data: behaviour
def test_toy_recipe_relabels_and_induces(tmp_path):
    prefix = write_toy(tmp_path)
    g = _toy_load(prefix, k=3)
    # union of the 3 largest communities (12, 10, 10) is nodes 0..29
    assert g.num_nodes == 30 and g.num_tasks == 3
    assert g.task_names == ["c1", "c2", "c3"]
    assert g.y[:, 0].sum() == 12 and bool(g.y[:12, 0].all())
    ei = g.edge_index
    assert int(ei.max()) < 30 and not bool((ei[0] == ei[1]).any())
    # undirected and coalesced: both directions present exactly once
    pairs = set(map(tuple, ei.t().tolist()))
    assert all((v, u) in pairs for u, v in pairs) and len(pairs) == ei.shape[1]
    assert g.x.shape == (30, 1)


def test_toy_plain_text_files_and_features(tmp_path):
    prefix = write_toy(tmp_path, gz=False)
    g = _toy_load(prefix, k=2, features=FeatureConfig(dim=16))
    assert g.x.shape == (g.num_nodes, 16) and g.x.dtype == torch.float32


def test_split_fractions_configurable_and_seeded(tmp_path):
    prefix = write_toy(tmp_path)
    a = _toy_load(prefix, split=SplitConfig(train=0.5, val=0.25, seed=1))
    b = _toy_load(prefix, split=SplitConfig(train=0.5, val=0.25, seed=1))
    c = _toy_load(prefix, split=SplitConfig(train=0.5, val=0.25, seed=2))
    assert torch.equal(a.train_mask, b.train_mask) and not torch.equal(a.train_mask, c.train_mask)
    assert int((a.train_mask[:, 0] & a.y[:, 0]).sum()) == 6          # 0.5 * 12 positives
    assert int((a.val_mask[:, 0] & a.y[:, 0]).sum()) == 3            # 0.25 * 12


def test_duplicate_lines_are_kept_as_tasks(tmp_path):
    ten = "\t".join(map(str, range(10))) + "\n"
    cmty = ten + ten + "\t".join(map(str, range(20, 28))) + "\n"
    prefix = write_toy(tmp_path, cmty=cmty)
    g = _toy_load(prefix, k=3)
    assert g.task_names == ["c1", "c2", "c3"] and torch.equal(g.y[:, 0], g.y[:, 1])


def test_largest_communities_tie_rules():
    sizes = np.array([5, 7, 5, 7, 5, 9])
    assert largest_communities(sizes, 3, "first").tolist() == [5, 1, 3]
    assert set(largest_communities(sizes, 3, "reference").tolist()) == {5, 1, 3}
    assert set(largest_communities(sizes, 4, "first").tolist()) == {5, 1, 3, 0}
    ref4 = largest_communities(sizes, 4, "reference")
    assert set(ref4.tolist()) == set(np.argsort(sizes, kind="heapsort")[-4:].tolist())
    assert sizes[ref4].tolist() == sorted(sizes[ref4].tolist(), reverse=True)


def test_duplicate_edges_and_self_loops_warn_then_drop(tmp_path):
    edges = "# h\n0\t1\n1\t0\n0\t1\n2\t2\n1\t2\n"
    (tmp_path / "g.txt").write_text(edges)
    with pytest.warns(DataWarning, match=r"g.txt: dropped 1 self-loop\(s\) and 2 duplicate"):
        out = read_snap_graph(tmp_path / "g.txt")
    assert out.tolist() == [[0, 1], [1, 2]]


def test_clean_file_gives_no_warning(tmp_path):
    prefix = write_toy(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _toy_load(prefix)


def test_crlf_and_comment_lines_in_the_middle(tmp_path):
    (tmp_path / "g.txt").write_bytes(b"# a\r\n0\t1\r\n# mid comment\r\n1\t2\r\n")
    assert read_snap_graph(tmp_path / "g.txt").tolist() == [[0, 1], [1, 2]]


def test_in_line_duplicate_members_count_once(tmp_path):
    (tmp_path / "c.txt").write_text("3\t1\t3\t2\n\n5\t4\n")
    comms = read_communities(tmp_path / "c.txt")
    assert comms.sizes.tolist() == [3, 2] and comms.line.tolist() == [1, 3]
    assert comms.members.tolist() == [1, 2, 3, 4, 5]


# ---------------------------------------------------------------------- bad input
def test_error_malformed_edge_line(tmp_path):
    edges = "# h\n0\t1\n1\t2\t3\n2\t3\n"
    prefix = write_toy(tmp_path, edges=edges)
    with pytest.raises(GraphMTLError, match=r"com-toy.ungraph.txt.gz: line 3: expected 2 fields, got 3"):
        _toy_load(prefix)


def test_error_non_integer_id(tmp_path):
    prefix = write_toy(tmp_path, edges="0\t1\n1\tx7\n")
    with pytest.raises(GraphMTLError, match=r"ungraph.txt.gz: line 2: node id 'x7' is not a"):
        _toy_load(prefix)
    prefix = write_toy(tmp_path / "b", edges="0\t1\n1\t-2\n")
    with pytest.raises(GraphMTLError, match=r"line 2: node id '-2'"):
        _toy_load(prefix)


def test_error_non_integer_member(tmp_path):
    prefix = write_toy(tmp_path, cmty="0\t1\t2\n3\t4.5\t6\n")
    with pytest.raises(GraphMTLError, match=r"top5000.cmty.txt.gz: line 2: node id '4.5'"):
        _toy_load(prefix)


def test_error_member_absent_from_graph(tmp_path):
    cmty = "\t".join(map(str, range(12))) + "\n" + "\t".join(map(str, range(10, 19))) + "\t99\n"
    prefix = write_toy(tmp_path, cmty=cmty)
    with pytest.raises(GraphMTLError, match=r"cmty.txt.gz: line 2: node 99 is not in the graph "
                                            r"com-toy.ungraph.txt.gz"):
        _toy_load(prefix, k=1)


def test_error_empty_files(tmp_path):
    prefix = write_toy(tmp_path, edges="# only a header\n")
    with pytest.raises(GraphMTLError, match="ungraph.txt.gz: no edges in the file"):
        _toy_load(prefix)
    prefix = write_toy(tmp_path / "b", cmty="\n\n")
    with pytest.raises(GraphMTLError, match="top5000.cmty.txt.gz: no communities in the file"):
        _toy_load(prefix)


def test_error_k_out_of_range(tmp_path):
    prefix = write_toy(tmp_path)
    with pytest.raises(GraphMTLError, match=r"k=5: must lie in \[1, 4\] \(the file has 4 communities\)"):
        _toy_load(prefix, k=5)
    with pytest.raises(GraphMTLError, match="k: must be an integer >= 1"):
        SnapRecipe(k=0)


def test_error_task_without_positives_in_a_split(tmp_path):
    cmty = "\t".join(map(str, range(20))) + "\n30\t31\n"
    prefix = write_toy(tmp_path, cmty=cmty)
    with pytest.raises(GraphMTLError, match=r"task 'c2': only 2 positives, too few"):
        _toy_load(prefix, k=2)


def test_error_missing_and_corrupt_files(tmp_path):
    with pytest.raises(GraphMTLError, match="com-nope.ungraph.txt.gz: file not found"):
        snap_files(tmp_path / "com-nope")
    prefix = write_toy(tmp_path)
    data = (tmp_path / "com-toy.ungraph.txt.gz").read_bytes()
    (tmp_path / "com-toy.ungraph.txt.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(GraphMTLError, match="com-toy.ungraph.txt.gz: cannot read"):
        _toy_load(prefix)
    with pytest.raises(GraphMTLError, match="ties: must be one of"):
        SnapRecipe(ties="random")
