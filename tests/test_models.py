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


# ---------------------------------------------------------------------- the encoder registry
def test_every_encoder_has_one_consistent_spec():
    from graphmtl.models import ENCODER_SPECS, encoder_spec
    from graphmtl.models.encoders import MessagePassingEncoder, SIGNEncoder

    assert ENCODERS == ("sage", "gcn", "gat", "gin", "sign") == tuple(ENCODER_SPECS)
    for name, spec in ENCODER_SPECS.items():
        assert encoder_spec(name) is spec and ModelConfig(encoder=name).spec is spec
        assert ModelConfig(encoder=name).uses_message_passing == spec.message_passing
        # message passing wraps a PyG model; the others run on precomputed inputs
        assert (spec.pyg_model is not None) == spec.message_passing == (spec.preprocess is None)
        assert spec.module is (MessagePassingEncoder if spec.message_passing else SIGNEncoder)
        assert not spec.trimmable or spec.message_passing
    # trimming a sampled subgraph would change GCN's degree normalisation
    assert not encoder_spec("gcn").trimmable and encoder_spec("gcn").degree_normalised
    assert encoder_spec("sage").trimmable and not encoder_spec("sage").degree_normalised
    with pytest.raises(GraphMTLError, match=r"model encoder: unknown 'mlp' \(choose from sage, "
                                            r"gcn, gat, gin, sign\)"):
        encoder_spec("mlp")


@pytest.mark.parametrize("encoder", ENCODERS)
def test_spec_builds_the_module_it_declares(encoder):
    cfg = ModelConfig(encoder=encoder, hidden=8, heads=4)
    model = MultiTaskGNN(12, 2, cfg)
    spec = cfg.spec
    assert isinstance(model.encoder, spec.module)
    if spec.message_passing:
        from torch_geometric.nn import models as pyg_models

        assert type(model.encoder.gnn) is getattr(pyg_models, spec.pyg_model)
        assert model.encoder.prenormalised == spec.degree_normalised
        if spec.heads:
            assert model.encoder.gnn.convs[0].heads == 4


def test_node_inputs_are_the_spec_preprocessing_cached_per_graph():
    from graphmtl.data.graph import MultiTaskGraph
    from graphmtl.models import node_inputs

    N = 20
    ei = torch.tensor([[i for i in range(N - 1)] + [i + 1 for i in range(N - 1)],
                       [i + 1 for i in range(N - 1)] + [i for i in range(N - 1)]])
    y = torch.zeros(N, 2, dtype=torch.bool)
    y[::3, 0] = y[1::3, 1] = True
    mask = torch.zeros(N, 2, dtype=torch.bool)
    g = MultiTaskGraph(x=torch.randn(N, 3), edge_index=ei, y=y, train_mask=~mask | mask,
                       val_mask=mask, test_mask=mask, task_names=["a", "b"])
    assert node_inputs(g, ModelConfig(encoder="sage")) is g.x
    sign = ModelConfig(encoder="sign", sign_hops=2)
    a = node_inputs(g, sign)
    assert torch.equal(a, sign_features(g.x, ei, hops=2))
    assert node_inputs(g, sign) is a                                      # cached
    assert node_inputs(g, ModelConfig(encoder="sign", sign_hops=1)).shape == (N, 6)
