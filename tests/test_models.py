import pytest
import torch

from graphmtl.errors import GraphMTLError
from graphmtl.models import ENCODERS, ModelConfig, MultiTaskGNN, sign_features


@pytest.mark.parametrize("encoder", ENCODERS)
def test_forward_shapes(encoder):
    N, F, n = 30, 6, 5
    x = torch.randn(N, F)
    ei = torch.randint(0, N, (2, 90))
    cfg = ModelConfig(encoder=encoder, hidden=16, sign_hops=2)
    if encoder == "sign":
        x = sign_features(x, ei, hops=2)
    model = MultiTaskGNN(x.shape[1], n, cfg)
    assert model(x, ei).shape == (N, n)
    assert model.embed(x, ei).shape == (N, model.encoder.out_channels)


def test_sign_features_first_block_is_x():
    x = torch.randn(10, 3)
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    feats = sign_features(x, ei, hops=2)
    assert feats.shape == (10, 9)
    assert torch.equal(feats[:, :3], x)
    # Isolated nodes have nothing to aggregate.
    assert torch.all(feats[5:, 3:] == 0)


def test_config_validation():
    with pytest.raises(GraphMTLError, match="encoder"):
        ModelConfig(encoder="mlp")
    with pytest.raises(GraphMTLError, match="dropout"):
        ModelConfig(dropout=1.5)
