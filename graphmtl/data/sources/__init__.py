"""One entry point for every data source: ``load_dataset("snap:youtube,k=100")``.

Spec strings (``KIND[:TARGET][,key=value]...``):

=====================================  ===========================================================
``snap:youtube,k=100,seed=0``          SNAP recipe on a named dataset (``amazon``, ``dblp``,
                                       ``youtube``, ``lj``, ``orkut``, ``friendster``)
``snap:/data/com-dblp,communities=all`` SNAP recipe on ``/data/com-dblp.ungraph.txt[.gz]`` +
                                       ``/data/com-dblp.all.cmty.txt[.gz]``
``blogcatalog`` / ``blogcatalog:/x.mat``  BlogCatalog ``.mat``
``deezer`` / ``deezer:ro`` / ``deezer:/d/deezer-hu``  Deezer (country code or path prefix)
``ogb:ogbn-proteins,root=DIR``         ogbn-proteins through ``ogb`` (``DIR/ogbn_proteins``)
``synthetic`` / ``synthetic:preset=mid,num_tasks=200``  the planted-group generator; every
                                       key is forwarded to ``SyntheticConfig.from_strings``
``path/to/graph.npz``                  a graph saved by ``MultiTaskGraph.save``
``path/to/data.pt[,features=128]``     a PyG ``Data`` saved with ``torch.save(data, path)`` or
                                       ``torch.save(data.to_dict(), path)`` (``.pt`` / ``.pth``;
                                       :func:`graphmtl.data.pyg.load_pyg`)
=====================================  ===========================================================

Keys: ``k`` (tasks, SNAP), ``communities`` (``top5000`` | ``all``), ``ties`` (``reference`` |
``first``, see :mod:`graphmtl.data.snap`), ``seed`` / ``train`` / ``val`` (per-task splits),
``train_pos`` / ``pos_cutoff`` (the label-scarce protocol: fixed training positives per task),
``features`` (``auto``; an integer >= 2 for that many structural dimensions; ``none`` for a
constant feature; ``edge`` for ogbn-proteins' mean edge features), ``feature_seed``,
``min_positives`` (multilabel: drop rarer labels; ``auto``, the default, drops the labels
too rare to split; ``0`` keeps all), ``root`` (data root), ``download`` (SNAP:
``true`` / ``false``).

A ``.pt`` graph takes ``features`` (``auto``, the default: the file's ``x``, required; an integer
>= 2: that many structural dimensions instead), ``feature_seed`` and ``seed`` / ``train`` /
``val``: any of the last three draws seeded stratified splits instead of the file's masks (a file
without masks is split that way in any case).

Bare names resolve against a data root: the spec's ``root=``, else the ``root`` argument, else
``$GRAPHMTL_DATA`` (nothing else is assumed). Layout under the root:
``snap/com-NAME.*``, ``multilabel/blogcatalog.mat``, ``multilabel/deezer-CC.*``,
``ogb/ogbn_proteins/``. SNAP files found nowhere are downloaded into ``<cache>/snap``
(:mod:`graphmtl.data.download`).

Each format is one source class (:mod:`graphmtl.data.sources.formats`: its keys, how it finds its
files, how it builds the graph), looked up in one registry, ``SOURCES``; the grammar is
:class:`~graphmtl.data.sources.spec.DatasetSpec`.

Prepared graphs are cached in ``<cache>/prepared`` (cache = the ``cache_dir`` argument, else
``$GRAPHMTL_CACHE``, else ``~/.cache/graphmtl``), keyed on the sha256 of the source files, the
spec's parameters, the recipe versions and the loader code itself; written atomically, so a
second load only reads one ``.npz``. An entry that fails its content digest (damaged or
truncated) is discarded and rebuilt, with a warning naming it.
"""


from graphmtl.data.sources.formats import KINDS, SOURCES, DataSource, SourceFiles, source_for
from graphmtl.data.sources.load import data_root, default_cache_dir, load_dataset
from graphmtl.data.sources.spec import DatasetSpec

__all__ = ["KINDS", "SOURCES", "DataSource", "DatasetSpec", "SourceFiles", "data_root",
           "default_cache_dir", "load_dataset", "source_for"]
