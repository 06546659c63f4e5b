"""SNAP-like overlapping-community graphs with planted groups of related tasks.

The generator imitates the shape of SNAP ground-truth community graphs (com-YouTube, com-Orkut,
...) as the data recipe of docs/data.md uses them — one binary task per community, every node in
at least one task community — and plants a known task grouping:

1. **Groups and regions.** The ``num_tasks`` communities are split into ``num_groups`` groups of
   near-equal size. Every node gets a *home group*; the nodes of one home group form that group's
   *region*. A group's communities draw their members from its region, and a share
   ``group_core`` of their seats from the group's *core* (its highest-weight nodes), so
   communities of one group overlap strongly and communities of different groups barely overlap
   (only through the ``region_overlap`` share of memberships drawn from the whole graph).
2. **Heavy-tailed community sizes.** Raw sizes follow a truncated power law
   ``p(s) ~ s^-size_exponent`` on ``[1, size_spread]``, then are scaled so that a group's
   communities hold ``mean_memberships`` memberships per region node (at least
   ``min_community_size`` each).
3. **Power-law memberships per node.** Every region node takes one membership (so every node is
   labelled positive for some task, as in the SNAP recipe); the remaining memberships are drawn
   with probability proportional to a Pareto node weight with tail exponent
   ``membership_exponent``. Memberships are matched to communities by a random bipartite
   configuration model; a node drawn twice for one community is merged and the seat refilled.
4. **Dense insides, sparse background.** Community ``c`` of size ``s`` gets mean internal degree
   ``d_c ~ s^internal_degree_growth`` (scaled so the membership-weighted mean is
   ``internal_degree``, capped at density ``max_density``), drawn as uniform member pairs; the
   draw count is corrected for repeats so the expected density of distinct pairs is
   ``d_c / (s - 1)``. A Chung-Lu background adds ``background_degree`` mean degree with endpoints
   proportional to the node weights, which makes the degree distribution heavy-tailed too.
5. **Planted features** (``features="planted"``, cheap at any size): a low-dimensional latent per
   node — the sum over the node's communities of its task's direction, made of the group's
   shared direction (weight ``feature_sharing``) and a task-specific one — in a block of
   ``feature_rank`` dimensions private to the group and, with weight ``feature_conflict``, in a
   block shared by all groups under a different random rotation per group (one feature direction
   then means different things in different groups). The latent is mixed into ``feature_dim``
   dimensions by a random matrix and Gaussian noise is added. ``features="structural"`` uses
   :func:`graphmtl.data.features.structural_features` (FastRP, ``feature_dim`` wide) instead;
   ``features="none"`` gives a constant 1-d feature.
6. **Label models.** ``labels="community"`` (default): task t is membership of community t, and
   the communities of a group share its region. ``labels="annotation"``: every one of
   ``num_communities`` communities gets a region of its own, the ``num_groups`` largest are
   *latent* communities, and each task of group g is one annotator's labels of latent community
   g, on a random share ``label_coverage`` of the nodes (unlabelled elsewhere), missing a random
   share ``member_drop`` of its members. Tasks of one group then agree wherever both are
   labelled, and tasks of different groups label different communities. Both knobs also apply to
   ``labels="community"``.

What the planted groups mean for learning is measured, not assumed
(``experiments/bench_generator.py --transfer``, every model trained to convergence). With
``labels="community"`` two tasks of one group hurt each other more than two tasks of different
groups (overlapping communities of one region disagree on nodes a shared encoder cannot tell
apart): a grouping of competing tasks. With ``labels="annotation"`` the planted groups are groups
of *helping* tasks: a model on a task's whole group is better for it than a model on the task
alone, and a model on as many tasks of other groups is worse. The help is large where a task
alone is data-limited (preset ``annotated_scarce``: 2-3 training positives per task; test AP
up by about 0.2 for 97 % of the tasks, and one model per group beats one model on all tasks).
Where single tasks are already near perfect (preset ``annotated``) groups still help, but one
model on all tasks does as well. A single same-group partner is better than an other-group one
but does not measurably help by itself.

Everything is vectorised numpy; edges are sampled in chunks of ``edge_chunk`` draws and encoded as
int64 pair keys, so memory stays ``O(N * n / 8 + E)`` (no ``O(N^2)``). The graph structure, the
features and the splits use independent random streams spawned from ``seed``: changing feature
parameters does not change the graph.
"""

from graphmtl.data.synthetic.config import (FEATURE_KINDS, LABEL_MODELS, LABEL_SETS, PRESETS,
                                            SyntheticConfig)
from graphmtl.data.synthetic.generator import make_planted_graph
from graphmtl.data.synthetic.labels import planted_groups

__all__ = ["FEATURE_KINDS", "LABEL_MODELS", "LABEL_SETS", "PRESETS", "SyntheticConfig",
           "make_planted_graph", "planted_groups"]
