"""load_dataset / DatasetSpec: parsing, resolution, caching, downloads over local HTTP."""

import contextlib
import functools
import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch

from graphmtl.data import DatasetSpec, MultiTaskGraph, load_dataset
from graphmtl.data.download import download_file, fetch_snap, snap_file_names
from graphmtl.data.sources import data_root, default_cache_dir
from graphmtl.errors import GraphMTLError

SNAP = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "snap"


def _toy_snap(folder: Path, name="com-toy"):
    """40-node ring with chords; 4 communities of sizes 12, 10, 10, 6 (as in test_data_snap)."""
    folder.mkdir(parents=True, exist_ok=True)
    pairs = [(i, (i + 1) % 40) for i in range(40)] + [(i, (i + 7) % 40) for i in range(0, 40, 3)]
    with gzip.open(folder / f"{name}.ungraph.txt.gz", "wt") as f:
        f.write("# toy\n" + "".join(f"{u}\t{v}\n" for u, v in pairs))
    with gzip.open(folder / f"{name}.top5000.cmty.txt.gz", "wt") as f:
        for c in (range(0, 12), range(10, 20), range(20, 30), range(30, 36)):
            f.write("\t".join(map(str, c)) + "\n")
    return folder / name


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHMTL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GRAPHMTL_DATA", raising=False)
    monkeypatch.delenv("GRAPHMTL_SNAP_URL", raising=False)


@contextlib.contextmanager
def serve(directory: Path, lifetime: float = 60.0):
    """An HTTP server for ``directory`` on 127.0.0.1, random port, in a daemon thread; it stops
    when the block ends, and on its own after ``lifetime`` seconds in any case."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    timer = threading.Timer(lifetime, server.shutdown)
    timer.daemon = True
    timer.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        timer.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# ---------------------------------------------------------------------- spec parsing
@pytest.mark.parametrize("text, expect", [
    ("snap:youtube,k=100,seed=0,train=0.2,val=0.2,features=128",
     dict(kind="snap", target="youtube", k=100, features="128")),
    ("snap:/path/to/com-dblp,k=50,communities=all",
     dict(kind="snap", target="/path/to/com-dblp", k=50, communities="all")),
    ("blogcatalog", dict(kind="blogcatalog", target=None)),
    ("blogcatalog:/path/x.mat", dict(kind="blogcatalog", target="/path/x.mat")),
    ("deezer", dict(kind="deezer", target=None, min_positives=None)),
    ("deezer:/p/deezer-ro,min_positives=5", dict(kind="deezer", target="/p/deezer-ro",
                                                  min_positives=5)),
    ("ogb:ogbn-proteins,root=/d", dict(kind="ogb", target="ogbn-proteins", root="/d")),
    ("synthetic", dict(kind="synthetic", options=())),
    ("synthetic:num_tasks=50,seed=3", dict(kind="synthetic",
                                           options=(("num_tasks", "50"), ("seed", "3")))),
    ("graphs/x.npz", dict(kind="file", target="graphs/x.npz")),
    ("SNAP:amazon, k = 7, download=false", dict(kind="snap", target="amazon", k=7,
                                                download=False)),
])
def test_parse(text, expect):
    spec = DatasetSpec.parse(text)
    for key, value in expect.items():
        assert getattr(spec, key) == value, key
    assert DatasetSpec.parse(str(spec)) == spec        # canonical string round-trips


def test_direct_construction_is_type_checked():
    with pytest.raises(GraphMTLError, match=r"k: expected int, got '3'"):
        DatasetSpec(kind="snap", target="youtube", k="3")
    with pytest.raises(GraphMTLError, match=r"download: expected bool, got 1"):
        DatasetSpec(kind="snap", target="youtube", download=1)
    assert DatasetSpec(kind="snap", target="youtube", train=1 / 4).train == 0.25


def test_canonical_string_lists_non_defaults():
    assert str(DatasetSpec.parse("snap:youtube,k=100,seed=2")) == "snap:youtube,seed=2"


@pytest.mark.parametrize("text, match", [
    ("graphz:foo", r"dataset kind: unknown 'graphz'"),
    ("snap:youtube,kk=3", r"kk: unknown parameter for snap \(known: k,"),
    ("snap:youtube,k=ten", r"k: expected int, got 'ten'"),
    ("snap:youtube,k=2.5", r"k: expected int, got '2.5'"),
    ("snap:youtube,k=0", r"k: must be >= 1"),
    ("snap:youtube,train=0.7,val=0.4", r"split fractions: train \+ val must be < 1"),
    ("snap:youtube,features=1", r"features: expected auto, none, edge or an integer >= 2"),
    ("snap:youtube,features=edge", r"features: 'edge' exists only for ogb"),
    ("snap:youtube,communities=some", r"communities: must be one of top5000, all"),
    ("snap:youtube,ties=coin", r"ties: must be one of reference, first"),
    ("snap:youtube,download=maybe", r"download: expected true/false, got 'maybe'"),
    ("snap:youtube,k=3,k=4", r"k: given more than once"),
    ("snap:dblp,train_pos=0", r"train_pos: must be >= 1"),
    ("snap:dblp,train_pos=ten", r"train_pos: expected int, got 'ten'"),
    ("snap:amazon,pos_cutoff=100", r"pos_cutoff: only applies with train_pos"),
    ("snap:youtube,k", r"expected key=value, got 'k'"),
    ("snap", r"snap: a dataset name or path prefix is required"),
    ("deezer,min_positives=-1", r"min_positives: must be >= 0"),
    ("ogb:ogbn-arxiv", r"ogb: only ogbn-proteins is supported"),
    ("blogcatalog,k=3", r"k: unknown parameter for blogcatalog"),
    ("synthetic:foo", r"synthetic: takes key=value options only"),
    ("", r"dataset: empty spec"),
])
def test_parse_errors_name_the_parameter(text, match):
    with pytest.raises(GraphMTLError, match=match):
        DatasetSpec.parse(text)


# ---------------------------------------------------------------------- locations
def test_data_root_and_cache_dir_resolution(tmp_path, monkeypatch):
    assert data_root(tmp_path) == tmp_path
    monkeypatch.setenv("GRAPHMTL_DATA", str(tmp_path / "d"))
    assert data_root() == tmp_path / "d"
    monkeypatch.delenv("GRAPHMTL_DATA")
    assert data_root() is None          # no other place is assumed (not even ../shared)
    assert default_cache_dir() == tmp_path / "cache"
    assert default_cache_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("GRAPHMTL_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "graphmtl"


def test_bare_name_resolves_under_the_data_root(tmp_path, monkeypatch):
    _toy_snap(tmp_path / "data" / "snap")
    monkeypatch.setenv("GRAPHMTL_DATA", str(tmp_path / "data"))
    g = load_dataset("snap:toy,k=3,features=none")
    assert (g.num_nodes, g.num_tasks) == (30, 3)
    # an explicit root wins over the environment
    with pytest.raises(GraphMTLError, match=r"com-toy.ungraph.txt.gz and .* not found in .*"
                                            r"elsewhere.*download=false"):
        load_dataset("snap:toy,download=false", root=tmp_path / "elsewhere")


# ---------------------------------------------------------------------- caching
def test_cache_miss_then_hit_with_identical_graph(tmp_path):
    prefix = _toy_snap(tmp_path / "d")
    spec = f"snap:{prefix},k=3,features=16"
    a = load_dataset(spec)
    assert a.provenance["cache"]["status"] == "miss"
    assert Path(a.provenance["cache"]["path"]).is_file()
    b = load_dataset(spec)
    assert b.provenance["cache"]["status"] == "hit"
    for name in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert b.task_names == a.task_names
    prov = b.provenance
    assert prov["spec"] == f"snap:{prefix},k=3,features=16"
    assert [Path(f["path"]).name for f in prov["source_files"]] == [
        "com-toy.ungraph.txt.gz", "com-toy.top5000.cmty.txt.gz"]
    assert len(prov["source_files"][0]["sha256"]) == 64 and prov["params"]["k"] == 3


def test_cache_key_follows_params_and_file_contents(tmp_path):
    prefix = _toy_snap(tmp_path / "d")
    a = load_dataset(f"snap:{prefix},k=3,features=none")
    b = load_dataset(f"snap:{prefix},k=3,features=none,seed=1")
    assert b.provenance["cache"]["status"] == "miss"
    assert a.provenance["cache"]["key"] != b.provenance["cache"]["key"]
    # changing a source file (a new edge) invalidates the entry
    with gzip.open(Path(f"{prefix}.ungraph.txt.gz"), "at") as f:
        f.write("0\t15\n")
    c = load_dataset(f"snap:{prefix},k=3,features=none")
    assert c.provenance["cache"]["status"] == "miss" and c.num_edges == a.num_edges + 1
    d = load_dataset(f"snap:{prefix},k=3,features=none", use_cache=False)
    assert d.provenance["cache"]["status"] == "off"


def test_npz_path_spec(tmp_path):
    prefix = _toy_snap(tmp_path / "d")
    g = load_dataset(f"snap:{prefix},k=2,features=none")
    g.save(tmp_path / "g.npz")
    h = load_dataset(str(tmp_path / "g.npz"))
    assert isinstance(h, MultiTaskGraph) and torch.equal(h.y, g.y)


def test_synthetic_source_forwards_options():
    g = load_dataset("synthetic:num_nodes=400,num_tasks=6,num_groups=2,min_community_size=10")
    assert (g.num_nodes, g.num_tasks) == (400, 6)
    assert g.provenance["kind"] == "synthetic"
    with pytest.raises(GraphMTLError, match="synthetic num_tasks"):
        load_dataset("synthetic:num_tasks=zero")


# ---------------------------------------------------------------------- downloads
def test_download_from_local_http_server_and_load(tmp_path, monkeypatch):
    if not (SNAP / "com-amazon.ungraph.txt.gz").is_file():
        pytest.skip(f"real SNAP data not found at {SNAP} (../shared/datasets/snap)")
    with serve(SNAP) as url:
        monkeypatch.setenv("GRAPHMTL_SNAP_URL", url)
        g = load_dataset("snap:amazon,k=61,features=none", root=tmp_path / "empty-root")
    assert (g.num_nodes, g.num_edges) == (3_225, 10_262)
    cached = tmp_path / "cache" / "snap"
    for name in snap_file_names("amazon"):
        assert (cached / name).read_bytes() == (SNAP / name).read_bytes()
    # the files are now local: no server needed any more
    g2 = load_dataset("snap:amazon,k=61,features=none,seed=1", root=tmp_path / "empty-root")
    assert g2.num_nodes == 3_225


def test_download_checksums_verified(tmp_path):
    if not (SNAP / "com-amazon.ungraph.txt.gz").is_file():
        pytest.skip(f"real SNAP data not found at {SNAP} (../shared/datasets/snap)")
    names = snap_file_names("amazon")
    good = {n: hashlib.sha256((SNAP / n).read_bytes()).hexdigest() for n in names}
    with serve(SNAP) as url:
        paths = fetch_snap("amazon", tmp_path / "ok", url=url, checksums=good)
        assert [p.name for p in paths] == list(names)
        bad = {names[0]: "0" * 64}
        with pytest.raises(GraphMTLError, match=r"com-amazon.ungraph.txt.gz: checksum mismatch "
                                                r"\(sha256 ddbef7385a00ffed\.\.\., expected 0000"):
            fetch_snap("amazon", tmp_path / "bad", url=url, checksums=bad)
    assert not (tmp_path / "bad" / names[0]).exists()
    assert not any(p.name.endswith(".tmp.gz") for p in (tmp_path / "bad").glob("*"))


def test_download_rejects_corrupt_gzip_and_http_errors(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "com-broken.ungraph.txt.gz").write_bytes(gzip.compress(b"0\t1\n" * 1000)[:-20])
    with serve(served) as url:
        with pytest.raises(GraphMTLError, match="com-broken.ungraph.txt.gz: not a valid gzip file"):
            download_file(url + "com-broken.ungraph.txt.gz", tmp_path / "out" / "x.gz")
        with pytest.raises(GraphMTLError, match=r"com-absent.ungraph.txt.gz: HTTP 404"):
            download_file(url + "com-absent.ungraph.txt.gz", tmp_path / "out" / "y.gz")
    assert not (tmp_path / "out" / "x.gz").exists()


def test_offline_error_says_where_to_put_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPHMTL_SNAP_URL", "http://127.0.0.1:9/")   # discard port: refused
    with pytest.raises(GraphMTLError) as info:
        load_dataset("snap:youtube", root=tmp_path / "data")
    msg = str(info.value)
    assert "\n" not in msg and "offline? put com-youtube.ungraph.txt.gz and " \
        "com-youtube.top5000.cmty.txt.gz into" in msg and str(tmp_path / "data" / "snap") in msg


def test_generator_exports():
    import graphmtl.data as data

    assert data.SyntheticConfig.__name__ == "SyntheticConfig" and callable(data.make_planted_graph)
    assert callable(data.planted_groups)


# ---------------------------------------------------------------------- the source registry
def test_one_source_class_per_format():
    from graphmtl.data.sources import KINDS, SOURCES, source_for

    assert KINDS == ("snap", "blogcatalog", "deezer", "ogb", "synthetic", "file")
    for text, fmt in [("snap:youtube", "snap"), ("blogcatalog", "blogcatalog"),
                      ("deezer:ro", "deezer"), ("ogb:ogbn-proteins", "ogb"),
                      ("synthetic:seed=2", "synthetic"), ("graphs/g.npz", "npz"),
                      ("g.pt", "pt"), ("g.pth,seed=1", "pt")]:
        spec = DatasetSpec.parse(text)
        assert spec.format == fmt and source_for(spec) is SOURCES[fmt], text
        assert source_for(spec).kind == spec.kind
    assert [s.cached for s in SOURCES.values()] == [True] * 5 + [False] * 2


VALID = {"k": "3", "communities": "all", "ties": "first", "seed": "1", "train": "0.3",
         "val": "0.3", "train_pos": "2", "pos_cutoff": "1,train_pos=2", "features": "16",
         "feature_seed": "2", "download": "false", "min_positives": "3", "root": "/x"}


@pytest.mark.parametrize("fmt", ["snap", "blogcatalog", "deezer", "ogb", "pt"])
def test_every_declared_key_parses_for_its_source(fmt):
    from graphmtl.data.sources import SOURCES

    head = {"snap": "snap:youtube", "pt": "g.pt"}.get(fmt, fmt)
    for key in SOURCES[fmt].keys:
        spec = DatasetSpec.parse(f"{head},{key}={VALID[key]}")
        assert spec.format == fmt and str(spec).startswith(head), key


def test_cache_key_covers_the_source_modules():
    from graphmtl.data.sources import SOURCES
    from graphmtl.data.sources.load import code_digests

    code = code_digests(("sources", *SOURCES["synthetic"].modules))
    assert "sources/formats.py" in code and "synthetic/generator.py" in code
    assert all(len(v) == 64 for v in code.values())
