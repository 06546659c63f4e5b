"""PyG / OGB conversion (graphmtl.data.pyg), saved PyG files as dataset specs, the CLI on one."""

import math
import types
import warnings
from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data, HeteroData
from torch_geometric.utils import coalesce, remove_self_loops, to_undirected

from graphmtl.cli import main as cli_main
from graphmtl.data import (DataWarning, FeatureConfig, MultiTaskGraph, SplitConfig, from_ogb,
                           from_pyg, load_dataset, load_pyg, make_planted_graph,
                           stratified_task_splits, structural_features, to_pyg)
from graphmtl.data.sources import DatasetSpec
from graphmtl.data.synthetic import SyntheticConfig
from graphmtl.errors import GraphMTLError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
TENSORS = ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask")


def assert_same_graph(a: MultiTaskGraph, b: MultiTaskGraph) -> None:
    for key in TENSORS:
        ta, tb = getattr(a, key), getattr(b, key)
        assert ta.dtype == tb.dtype and torch.equal(ta, tb), key
    assert a.task_names == b.task_names


def strict_from_pyg(data, **kwargs) -> MultiTaskGraph:
    """from_pyg with every warning an error (clean input must not be reported as changed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return from_pyg(data, **kwargs)


def tiny_data(N=120, n=4, seed=0, **changes) -> Data:
    """A random multi-label graph, both edge directions, no masks."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(N, n, generator=g) < 0.3).float()
    ei = to_undirected(remove_self_loops(torch.randint(0, N, (2, 3 * N), generator=g))[0],
                       num_nodes=N)
    attrs = dict(x=torch.randn(N, 5, generator=g), edge_index=ei, y=y,
                 task_names=[f"t{j}" for j in range(n)])
    attrs.update(changes)
    return Data(**{k: v for k, v in attrs.items() if v is not None})


def shared_masks(N, seed=0):
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(seed))
    masks = [torch.zeros(N, dtype=torch.bool) for _ in range(3)]
    for m, part in zip(masks, (perm[: N // 2], perm[N // 2: 3 * N // 4], perm[3 * N // 4:])):
        m[part] = True
    return dict(zip(("train_mask", "val_mask", "test_mask"), masks))


# ---------------------------------------------------------------------- round trip
SYNTHETIC = {
    "default": SyntheticConfig.preset("default", num_nodes=400, num_tasks=6, num_groups=2,
                                      min_community_size=20, internal_degree=8.0, feature_dim=8),
    # labels on half the nodes per task: unlabelled pairs outside every split
    "annotated": SyntheticConfig.preset("annotated", num_nodes=600, num_tasks=8, num_groups=2,
                                        num_communities=4, feature_dim=8),
    "structural": SyntheticConfig.preset("default", num_nodes=300, num_tasks=4, num_groups=2,
                                         min_community_size=20, features="structural",
                                         feature_dim=8),
}


@pytest.mark.parametrize("preset", sorted(SYNTHETIC))
def test_round_trip_synthetic(preset):
    g = make_planted_graph(SYNTHETIC[preset])
    data = g.to_pyg()
    back = strict_from_pyg(data)
    assert_same_graph(g, back)
    assert back.provenance["planted_groups"] == g.provenance["planted_groups"]
    assert back.provenance["pyg"]["splits"] == "given masks (per task [N, n])"
    assert MultiTaskGraph.from_pyg(data).task_names == g.task_names


REAL = [("snap:youtube,k=3,features=8", "snap/com-youtube.ungraph.txt.gz"),
        ("snap:amazon,k=3,features=8", "snap/com-amazon.ungraph.txt.gz"),
        ("snap:dblp,k=3,features=8", "snap/com-dblp.ungraph.txt.gz"),
        ("blogcatalog,features=8", "multilabel/blogcatalog.mat"),
        ("deezer,features=8", "multilabel/deezer-hu.edges.csv.gz")]


@pytest.mark.parametrize("spec,needs", REAL, ids=[s.split(",")[0] for s, _ in REAL])
def test_round_trip_real_loaders(spec, needs, tmp_path):
    if not (SHARED / needs).is_file():
        pytest.skip(f"real data not found: {SHARED / needs}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)   # the loaders' own reports on raw files
        g = load_dataset(spec, root=SHARED, cache_dir=tmp_path, use_cache=False)
    assert_same_graph(g, strict_from_pyg(g.to_pyg()))


def test_to_pyg_shares_tensors_and_carries_names():
    g = make_planted_graph(SYNTHETIC["default"])
    data = to_pyg(g)
    assert data.x.data_ptr() == g.x.data_ptr() and data.y.dtype == torch.bool
    assert data.task_names == g.task_names and data.num_nodes == g.num_nodes
    assert data.provenance["name"] == "synthetic"


# ---------------------------------------------------------------------- labels
def test_float_nan_marks_unlabelled_pairs():
    data = tiny_data(**shared_masks(120))
    data.y[:10, 1] = math.nan
    g = strict_from_pyg(data)
    labelled = g.train_mask | g.val_mask | g.test_mask
    assert not labelled[:10, 1].any() and labelled[10:, 1].all() and labelled[:, 0].all()
    assert g.provenance["pyg"]["labels"] == "float, NaN = unlabelled"
    assert g.provenance["pyg"]["unlabelled_pairs"] == 10


def test_integer_minus_one_marks_unlabelled_pairs():
    data = tiny_data()
    y = data.y.long()
    y[:20, 2] = -1
    data.y = y
    g = strict_from_pyg(data, splits=SplitConfig(seed=4))
    labelled = g.train_mask | g.val_mask | g.test_mask
    assert not labelled[:20, 2].any() and labelled[20:, 2].all()
    torch.testing.assert_close(g.y, y == 1)
    # the splits are those of stratified_task_splits on the labelled pairs
    expect = stratified_task_splits(y == 1, y != -1, SplitConfig(seed=4), task_names=g.task_names)
    assert all(torch.equal(a, b) for a, b in zip(expect, (g.train_mask, g.val_mask, g.test_mask)))


def test_bool_and_sparse_y_agree():
    data = tiny_data(**shared_masks(120))
    dense = strict_from_pyg(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # "sparse CSR support is in beta"
        csr = data.y.to_sparse_csr()
    for sparse in (data.y.to_sparse(), csr, data.y.bool()):
        other = strict_from_pyg(Data(**{**data.to_dict(), "y": sparse}))
        assert torch.equal(other.y, dense.y) and torch.equal(other.train_mask, dense.train_mask)
    assert "sparse" in strict_from_pyg(
        Data(**{**data.to_dict(), "y": data.y.to_sparse()})).provenance["pyg"]["labels"]


def test_default_task_names_and_explicit_override():
    data = tiny_data(task_names=None)
    assert strict_from_pyg(data).task_names == ["task_0", "task_1", "task_2", "task_3"]
    assert strict_from_pyg(data, task_names=list("abcd")).task_names == list("abcd")


# ---------------------------------------------------------------------- splits
def test_shared_masks_apply_to_every_task():
    masks = shared_masks(120)
    g = strict_from_pyg(tiny_data(**masks))
    for key, m in masks.items():
        assert torch.equal(getattr(g, key), m[:, None].expand(120, 4))
    assert g.provenance["pyg"]["splits"] == "given masks (shared [N])"


def test_without_masks_splits_are_seeded_and_stratified():
    data = tiny_data()
    a, b = strict_from_pyg(data), strict_from_pyg(data)
    c = strict_from_pyg(data, splits=SplitConfig(seed=1))
    assert torch.equal(a.train_mask, b.train_mask) and not torch.equal(a.train_mask, c.train_mask)
    assert (a.train_mask | a.val_mask | a.test_mask).all()
    assert a.provenance["split"] == {"train": 0.2, "val": 0.2, "test": 0.6, "seed": 0}


def test_stratified_request_overrides_masks_with_a_warning():
    data = tiny_data(**shared_masks(120))
    with pytest.warns(DataWarning, match="train_mask, val_mask, test_mask ignored"):
        g = from_pyg(data, splits="stratified")
    assert not torch.equal(g.train_mask[:, 0], data.train_mask)


# ---------------------------------------------------------------------- edges
def test_directed_edges_become_undirected_like_pyg_utils():
    data = tiny_data()
    N = data.num_nodes
    g = torch.Generator().manual_seed(3)
    directed = torch.randint(0, N, (2, 400), generator=g)
    directed = torch.cat([directed, directed[:, :7], torch.tensor([[5, 6], [5, 6]])], dim=1)
    data.edge_index = directed
    pairs = [tuple(e) for e in directed.t().tolist()]
    distinct = {p for p in pairs if p[0] != p[1]}
    loops = sum(u == v for u, v in pairs)
    repeated = len(pairs) - loops - len(distinct)
    one_way = sum((v, u) not in distinct for u, v in distinct)
    assert loops >= 2 and repeated >= 7 and one_way > 0
    with pytest.warns(DataWarning, match=rf"^edge_index: {loops} self-loop\(s\) dropped, "
                                         rf"{repeated} repeated edge\(s\) dropped, {one_way} "
                                         r"one-way edge\(s\) given their reverse"):
        out = from_pyg(data)
    expect = coalesce(to_undirected(remove_self_loops(directed)[0], num_nodes=N), num_nodes=N)
    assert torch.equal(out.edge_index, expect)
    info = out.provenance["pyg"]["edges"]
    assert (info["self_loops"], info["repeated"], info["one_way"]) == (loops, repeated, one_way)
    assert info["undirected"] == expect.shape[1] // 2


def test_two_way_edges_are_not_reported():
    strict_from_pyg(tiny_data())       # to_undirected output: no warning


# ---------------------------------------------------------------------- features
def test_structural_features_on_request():
    data = tiny_data(x=None)
    g = strict_from_pyg(data, features="auto")
    torch.testing.assert_close(g.x, structural_features(g.edge_index, 120, FeatureConfig()))
    h = strict_from_pyg(tiny_data(), features=FeatureConfig(dim=8, seed=2))
    assert h.x.shape == (120, 8) and h.provenance["pyg"]["features"]["dim"] == 8
    assert strict_from_pyg(tiny_data(), features="auto").x.shape == (120, 5)   # x wins


def test_integer_features_become_float32():
    g = strict_from_pyg(tiny_data(x=torch.arange(240).view(120, 2)))
    assert g.x.dtype == torch.float32 and g.x[3, 1] == 7


# ---------------------------------------------------------------------- bad input
def _bad(**changes):
    return tiny_data(**changes)


def _no_val_positive():
    masks = shared_masks(120)
    data = tiny_data(**masks)
    data.y[masks["val_mask"], 2] = 0
    return data


BAD = {
    "y_1d": (lambda: _bad(y=torch.zeros(120)), r"^y: expected a 2-d \[N, n\] tensor"),
    "y_3d": (lambda: _bad(y=torch.zeros(120, 2, 2)), r"^y: expected a 2-d"),
    "y_missing": (lambda: Data(edge_index=torch.zeros(2, 0, dtype=torch.long)), r"^y: missing"),
    "y_float_value": (lambda: _bad(y=torch.full((120, 4), 0.5)),
                      r"^y: value 0\.5 at node 0, task 't0' is not 0 or 1 \(NaN marks"),
    "y_float_minus_one": (lambda: _bad(y=-torch.ones(120, 4)), r"^y: value -1\.0 at node 0"),
    "y_int_value": (lambda: _bad(y=torch.full((120, 4), 2)),
                    r"^y: value 2 at node 0, task 't0' is not 0 or 1 \(-1 marks"),
    "mask_shape": (lambda: _bad(**{**shared_masks(120),
                                   "val_mask": torch.ones(120, 3, dtype=bool)}),
                   r"^val_mask: expected shape \[120\] \(shared by all tasks\) or \[120, 4\]"),
    "mask_missing": (lambda: _bad(train_mask=torch.ones(120, dtype=bool)), r"^val_mask: missing"),
    "mask_overlap": (lambda: _bad(**{**shared_masks(120),
                                     "test_mask": torch.ones(120, dtype=bool)}),
                     r"^train_mask and test_mask: both contain node \d+"),
    "mask_values": (lambda: _bad(**{**shared_masks(120), "val_mask": torch.full((120,), 3)}),
                    r"^val_mask: expected bool"),
    "no_positive": (_no_val_positive, r"^task 't2': no positives in val_mask"),
    "edge_out_of_range": (lambda: _bad(edge_index=torch.tensor([[0, 120], [1, 2]])),
                          r"^edge_index: node ids must lie in \[0, 120\).*got \[0, 120\]"),
    "edge_negative": (lambda: _bad(edge_index=torch.tensor([[0, -1], [1, 2]])),
                      r"^edge_index: node ids must lie in \[0, 120\)"),
    "edge_shape": (lambda: _bad(edge_index=torch.zeros(3, 4, dtype=torch.long)),
                   r"^edge_index: expected shape \[2, E\]"),
    "edge_float": (lambda: _bad(edge_index=torch.zeros(2, 4)), r"^edge_index: expected integer"),
    "x_nan": (lambda: _bad(x=torch.where(torch.arange(600).view(120, 5) == 17, math.nan, 0.0)),
              r"^x: 1 NaN value\(s\), the first at node 3, feature 2"),
    "x_inf": (lambda: _bad(x=torch.full((120, 2), math.inf)), r"^x: 240 infinite value"),
    "x_rows": (lambda: _bad(x=torch.zeros(119, 5)), r"^x: expected shape \[120, F\]"),
    "no_features": (lambda: _bad(x=None), r"^x: the data has no node features; ask for "
                                          r"structural ones .*features='structural'"),
    "task_names": (lambda: _bad(task_names=["a", "b"]), r"^task_names: expected 4 names"),
    "task_names_dup": (lambda: _bad(task_names=["a", "b", "a", "c"]), r"^task_names: 'a' appears"),
    "num_nodes": (lambda: _bad(num_nodes=99), r"^num_nodes: 99, but y has 120 rows"),
    "hetero": (lambda: HeteroData(), r"^data: a HeteroData is not supported"),
    "not_data": (lambda: [1, 2], r"^data: expected a torch_geometric Data"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_naming_the_attribute(case):
    make, match = BAD[case]
    with pytest.raises(GraphMTLError, match=match) as info:
        from_pyg(make())
    assert "\n" not in str(info.value)


def test_bad_options():
    with pytest.raises(GraphMTLError, match="^features: expected one of x, auto, structural"):
        from_pyg(tiny_data(), features="none")
    with pytest.raises(GraphMTLError, match="^splits: expected None, 'masks'"):
        from_pyg(tiny_data(), splits="random")
    with pytest.raises(GraphMTLError, match="^train_mask: missing"):
        from_pyg(tiny_data(), splits="masks")


# ---------------------------------------------------------------------- OGB
class FakeOGB:
    """The interface of ogb's PygNodePropPredDataset (or NodePropPredDataset, ``pairs=True``)."""

    def __init__(self, data: Data, name="ogbn-fake", task_type="binary classification",
                 pairs=False, split=None):
        self.data, self.name, self.task_type, self.pairs = data, name, task_type, pairs
        N = data.num_nodes
        perm = torch.randperm(N, generator=torch.Generator().manual_seed(0))
        self.split = split or {"train": perm[: N // 2], "valid": perm[N // 2: 3 * N // 4],
                               "test": perm[3 * N // 4:]}

    def __getitem__(self, i):
        assert i == 0
        if not self.pairs:
            return self.data
        graph = {"edge_index": self.data.edge_index.numpy(), "node_feat": self.data.x.numpy(),
                 "edge_feat": None, "num_nodes": self.data.num_nodes}
        return graph, self.data.y.long().numpy()

    def get_idx_split(self):
        return self.split


@pytest.mark.parametrize("pairs", [False, True], ids=["pyg", "library-agnostic"])
def test_from_ogb_keeps_its_split(pairs):
    data = tiny_data(task_names=None)
    ds = FakeOGB(data, pairs=pairs)
    g = from_ogb(ds)
    assert g.task_names == [f"fake-{j}" for j in range(4)]
    for ours, theirs in (("train", "train"), ("val", "valid"), ("test", "test")):
        m = torch.zeros(120, dtype=torch.bool)
        m[ds.split[theirs]] = True
        assert torch.equal(g.mask(ours), m[:, None].expand(120, 4))
    assert g.provenance["name"] == "ogbn-fake" and g.provenance["kind"] == "ogb"
    assert_same_graph(g, MultiTaskGraph.from_ogb(ds))


def test_from_ogb_rejects_what_it_cannot_use():
    data = tiny_data()
    with pytest.raises(GraphMTLError, match="task_type is 'multiclass classification'"):
        from_ogb(FakeOGB(data, task_type="multiclass classification"))
    with pytest.raises(GraphMTLError, match=r"get_idx_split\(\)\['valid'\]: node ids must lie"):
        from_ogb(FakeOGB(data, split={"train": torch.arange(5), "valid": torch.tensor([500]),
                                      "test": torch.arange(5, 9)}))
    with pytest.raises(GraphMTLError, match="has no 'test' entry"):
        from_ogb(FakeOGB(data, split={"train": torch.arange(5), "valid": torch.arange(5, 9)}))
    with pytest.raises(GraphMTLError, match="expected an OGB node-property dataset"):
        from_ogb(data)


# ---------------------------------------------------------------------- files
def test_saved_data_and_dict_load_through_load_dataset(tmp_path):
    g = make_planted_graph(SYNTHETIC["annotated"])
    torch.save(g.to_pyg(), tmp_path / "graph.pt")
    torch.save(g.to_pyg().to_dict(), tmp_path / "dict.pth")
    for name in ("graph.pt", "dict.pth"):
        back = load_dataset(str(tmp_path / name))
        assert_same_graph(g, back)
        assert back.provenance["source_files"][0]["path"] == str((tmp_path / name).resolve())
        assert back.provenance["spec"] == str(tmp_path / name)


def test_pt_spec_parameters(tmp_path):
    data = tiny_data(x=None, **shared_masks(120))
    torch.save(data, tmp_path / "g.pt")
    spec = DatasetSpec.parse(f"{tmp_path}/g.pt,features=16,seed=3")
    assert spec.kind == "file" and spec.features == "16" and spec.seed == 3
    assert str(spec) == f"{tmp_path}/g.pt,seed=3,features=16"
    with pytest.raises(GraphMTLError, match="^.*g.pt: x: the data has no node features"):
        load_dataset(str(tmp_path / "g.pt"))
    with pytest.warns(DataWarning, match="ignored: stratified splits were asked for"):
        g = load_dataset(str(spec), cache_dir=tmp_path / "cache")
    assert g.x.shape == (120, 16) and g.provenance["split"]["seed"] == 3
    assert not torch.equal(g.train_mask[:, 0], data.train_mask)   # stratified, not the masks
    with pytest.raises(GraphMTLError, match="^k: unknown parameter for a .pt graph"):
        DatasetSpec.parse("g.pt,k=3")
    with pytest.raises(GraphMTLError, match="^features: 'none' is not available for a .pt"):
        DatasetSpec.parse("g.pt,features=none")
    with pytest.raises(GraphMTLError, match="^seed: a .npz graph takes no parameters"):
        DatasetSpec(kind="file", target="g.npz", seed=2)


def test_unloadable_files_are_one_line_errors(tmp_path):
    hetero = HeteroData()
    hetero["a"].x = torch.zeros(2, 1)
    cases = {"hetero.pt": (hetero, "cannot be read with torch.load\\(weights_only=True\\) "
                                   "\\(it needs torch_geometric"),
             "object.pt": (types.SimpleNamespace(a=1), "it needs types.SimpleNamespace"),
             "tensor.pt": (torch.zeros(3), "holds a Tensor, expected a torch_geometric Data")}
    for name, (obj, match) in cases.items():
        torch.save(obj, tmp_path / name)
        with pytest.raises(GraphMTLError, match=match) as info:
            load_pyg(tmp_path / name)
        assert "\n" not in str(info.value)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(GraphMTLError, match="junk.pt: cannot be read"):
        load_dataset(str(tmp_path / "junk.pt"))
    with pytest.raises(GraphMTLError, match="missing.pt: file not found"):
        load_dataset(str(tmp_path / "missing.pt"))


def test_cli_run_on_a_saved_pyg_graph(tmp_path, capsys):
    g = make_planted_graph(SYNTHETIC["default"])
    torch.save(g.to_pyg(), tmp_path / "graph.pt")
    rc = cli_main(["run", "--data", str(tmp_path / "graph.pt"), "--out", str(tmp_path / "run"),
                   "--epochs", "2", "--hidden", "8", "--dim", "8", "--subsets", "30",
                   "--subset-size", "3", "--k", "2", "--threads", "1", "--no-pairwise",
                   "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "shared subspace" in out
    assert (tmp_path / "run" / "report" / "report.html").is_file()
    saved = MultiTaskGraph.load(tmp_path / "run" / "data" / "graph.npz")
    assert_same_graph(g, saved)


def test_cli_reports_a_bad_pt_file_in_one_line(tmp_path, capsys):
    torch.save(tiny_data(y=torch.zeros(120)), tmp_path / "bad.pt")
    rc = cli_main(["run", "--data", str(tmp_path / "bad.pt"), "--out", str(tmp_path / "run"),
                   "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("graphmtl: error: ") and "y: expected a 2-d" in err
    assert "\n" not in err
