"""Forward-mode projected gradients on real SNAP data (YouTube-100), every encoder."""

import warnings
from pathlib import Path

import pytest
import torch

from graphmtl.models import ENCODERS, ModelConfig, MultiTaskGNN
from graphmtl.projection import Directions, NodeBatches, project_batch
from graphmtl.testing.projection import reverse_mode_projection

warnings.filterwarnings("ignore", message=".*pyg-lib.*")
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"


@pytest.fixture(scope="module")
def youtube():
    if not (DATA / "snap" / "com-youtube.top5000.cmty.txt.gz").is_file():
        pytest.skip(f"real SNAP data not found under {DATA.resolve()}")
    from graphmtl.data.sources import load_dataset

    return load_dataset(f"snap:youtube,k=100,root={DATA.resolve()}")


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ENCODERS)
def test_forward_mode_matches_reverse_mode_on_youtube(youtube, encoder):
    graph = youtube
    torch.manual_seed(0)
    cfg = ModelConfig(encoder=encoder, hidden=16, sign_hops=2, heads=2)
    width = graph.num_features * 3 if encoder == "sign" else graph.num_features
    model = MultiTaskGNN(width, graph.num_tasks, cfg).eval()
    dirs = Directions.for_model(model, dim=16, seed=0)
    nodes = torch.tensor([0, 5000, 9999, 16000])
    x, ei, B = NodeBatches(model, graph, nodes, batch_size=4, fanouts=(5, 3), seed=0)[0]
    f0, z = project_batch(model, x, ei, B, dirs, direction_chunk=8)
    z_ref = reverse_mode_projection(model, x, ei, B, dirs)
    assert z.shape == (4, 100, 16)
    assert float((z - z_ref).norm() / z_ref.norm()) < 1e-5
