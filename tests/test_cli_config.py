"""The parsing every config shares (graphmtl.utils.config): one fanout parser, one unknown-key
policy and type check for every ``from_dict``, used by ``graphmtl run --config`` and checkpoints."""

from __future__ import annotations

import json

import pytest

from graphmtl.errors import GraphMTLError
from graphmtl.models import ModelConfig
from graphmtl.pipeline import AffinityConfig, CompareConfig, PipelineConfig
from graphmtl.projection import ProjectionConfig
from graphmtl.training import TrainConfig
from graphmtl.utils.config import config_from_dict, parse_fanouts, replace_checked


def test_one_fanout_parser_for_every_config():
    assert parse_fanouts("10,5") == parse_fanouts([10, 5]) == parse_fanouts((10, 5)) == (10, 5)
    assert parse_fanouts(" 4 , -1 ,") == (4, -1)
    assert TrainConfig(fanouts="3,2").fanouts == (3, 2)
    assert ProjectionConfig(fanouts="3,2").fanouts == (3, 2)
    assert ProjectionConfig(fanouts=None).fanouts is None
    for bad, match in (("10,x", "expected integers"), ("", "at least one"), ("0,5", ">= 1"),
                       ([2.5], "expected integers"), ([True], "expected integers")):
        with pytest.raises(GraphMTLError, match=match):
            parse_fanouts(bad, "--fanouts")
    with pytest.raises(GraphMTLError, match="^train fanouts: expected integers"):
        TrainConfig(fanouts="a")
    with pytest.raises(GraphMTLError, match="^projection fanouts: each value must be"):
        ProjectionConfig(fanouts=(0,))


@pytest.mark.parametrize("cls", [ModelConfig, TrainConfig, ProjectionConfig, AffinityConfig,
                                 CompareConfig, PipelineConfig])
def test_every_from_dict_rejects_unknown_keys_and_round_trips(cls):
    config = cls()
    data = json.loads(json.dumps(config.to_dict() if hasattr(config, "to_dict")
                                 else vars(config)))
    assert cls.from_dict(data) == config
    with pytest.raises(GraphMTLError, match=r"unknown key 'bogus' \(known: "):
        cls.from_dict({**data, "bogus": 1})
    with pytest.raises(GraphMTLError, match="expected a JSON object"):
        cls.from_dict([1])


def test_from_dict_checks_types_and_nested_keys():
    for data, match in (
            ({"train": {"epochs": "x"}}, r"train\.epochs: expected integer, got 'x'"),
            ({"train": {"epoch": 3}}, r"unknown key 'train\.epoch'"),
            ({"model": {"dropout": "high"}}, r"model\.dropout: expected number"),
            ({"compare": {"pairwise": 1}}, r"compare\.pairwise: expected true/false"),
            ({"projection": {"train_budget": 2.5}}, r"train_budget: expected integer or null"),
            ({"train": 3}, r"train: expected a JSON object, got int"),
            ({"k": True}, r"k: expected integer or string"),
    ):
        with pytest.raises(GraphMTLError, match=match):
            PipelineConfig.from_dict(data, name="--config c.json")
    cfg = PipelineConfig.from_dict({"train": {"fanouts": "4,4", "epochs": 2},
                                    "projection": {"train_budget": None}, "k": 3})
    assert cfg.train.fanouts == (4, 4) and cfg.projection.train_budget is None
    assert cfg.model == ModelConfig() and cfg.k == 3
    assert TrainConfig.from_dict({"fanouts": [5]}).fanouts == (5,)
    assert config_from_dict(AffinityConfig, {"lam": 2}, "x").lam == 2


def test_replace_names_unknown_fields():
    tc = TrainConfig()
    assert tc.replace(epochs=3).epochs == 3
    with pytest.raises(GraphMTLError, match="train config: unknown key 'epoch'"):
        tc.replace(epoch=3)
    with pytest.raises(GraphMTLError, match="pipeline config: unknown key 'n_groups'"):
        PipelineConfig().replace(n_groups=3)
    assert replace_checked(ModelConfig(), "m", hidden=4).hidden == 4


def test_pipeline_config_checks_what_needs_no_data():
    with pytest.raises(GraphMTLError, match=r"cluster_solver \(--solver\)"):
        PipelineConfig(cluster_solver="fast")
    assert PipelineConfig(cluster_solver="admm").cluster_solver == "admm"
    with pytest.raises(GraphMTLError, match=r"train\.fanouts \(--fanouts\): 2 values"):
        PipelineConfig(model=ModelConfig(encoder="sage", num_layers=3))
    with pytest.raises(GraphMTLError, match=r"projection\.fanouts \(--projection-fanouts\)"):
        PipelineConfig(model=ModelConfig(encoder="sage"),
                       projection=ProjectionConfig(fanouts=(3,)))
    sign = ModelConfig(encoder="sign", num_layers=3)     # no message passing: fanouts unused
    assert PipelineConfig(model=sign).model.num_layers == 3
