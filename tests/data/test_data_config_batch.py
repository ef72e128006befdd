"""DataConfig.from_dict (strict keys, typed coercion) and the batch-format validator."""

import numpy as np
import pytest
from batch_contract import check_batch

from data_pipelines.batch import BATCH_KEYS
from data_pipelines.config import AugmentConfig, DataConfig, SourceConfig


def test_from_dict_builds_nested_typed_config():
    cfg = DataConfig.from_dict({
        "sources": [{"name": "nyu", "root": "/d", "list_file": "l.txt", "weight": 1},
                    {"name": "kitti", "root": "/k", "min_depth": 0.01, "max_depth": 80}],
        "batch_size": 8, "image_size": [384, 512],
        "augment": {"rotate_degrees": 2, "random_crop": [352, 704]},
        "num_epochs": None})
    assert cfg.sources[0] == SourceConfig("nyu", root="/d", list_file="l.txt", weight=1.0)
    assert isinstance(cfg.sources[1].max_depth, float) and cfg.image_size == (384, 512)
    assert cfg.augment == AugmentConfig(rotate_degrees=2.0, random_crop=(352, 704))
    assert DataConfig.from_dict(cfg.to_dict()) == cfg  # round trip
    with pytest.raises(AttributeError):
        cfg.batch_size = 3  # frozen


@pytest.mark.parametrize("bad,match", [
    ({"sources": [{"name": "nyu"}], "batchsize": 2}, r"unknown key\(s\) 'batchsize' in data"),
    ({"sources": [{"name": "nyu", "rooot": "/x"}]}, r"'rooot' in data.sources\[0\]"),
    ({"sources": [{"name": "nyu"}], "augment": {"flip": 0.5}}, r"'flip' in data.augment"),
    ({"sources": [{"name": "nyuv2"}]}, "unknown dataset 'nyuv2'"),
    ({"sources": [{"name": "nyu"}], "batch_size": "16"}, "data.batch_size: expected int"),
    ({"sources": [{"name": "nyu"}], "image_size": [384]}, "expected 2 entries"),
    ({"sources": [{"name": "nyu"}], "on_bad_example": "ignore"}, "on_bad_example"),
    ({"sources": [{"name": "synthetic_indoor"}]}, "num_examples"),
    ({"sources": [{"name": "nyu", "min_depth": 5.0, "max_depth": 1.0}]}, "min_depth"),
    ({"sources": []}, "at least one source"),
    ({"sources": [{"name": "nyu", "domain": 2}]}, "domain"),
])
def test_from_dict_rejects_bad_input(bad, match):
    with pytest.raises((ValueError, TypeError), match=match):
        DataConfig.from_dict(bad)


def good_batch(b=2):
    depth = np.zeros((b, 6, 8), np.float32)
    depth[:, 2:, :] = 3.0
    return {"image": np.full((b, 4, 5, 3), 0.5, np.float32), "depth": depth, "valid": depth > 0,
            "domain": np.zeros(b, np.int32), "focal": np.full(b, 518.0, np.float32),
            "disparity": np.zeros(b, bool)}


def test_check_batch_accepts_the_contract_and_names_violations():
    check_batch(good_batch(), batch_size=2, image_size=(4, 5))
    assert set(good_batch()) == set(BATCH_KEYS)
    cases = [
        (lambda b: b.pop("focal"), "keys"),
        (lambda b: b.update(image=b["image"].astype(np.float64)), "image"),
        (lambda b: b.update(image=b["image"] * 3), r"\[0, 1\]"),
        (lambda b: b["valid"].__setitem__((0, 0, 0), True), "valid depth must be > 0"),
        (lambda b: b["valid"].__setitem__((0, 3, 3), False), "0 wherever valid is False"),
        (lambda b: b.update(domain=np.array([0, 2], np.int32)), "domain"),
        (lambda b: b.update(depth=b["depth"][:, :5], valid=b["valid"][:, :5]), None),
    ]
    for mutate, match in cases:
        batch = good_batch()
        mutate(batch)
        if match is None:  # a consistent smaller depth map is fine
            check_batch(batch)
            continue
        with pytest.raises(ValueError, match=match):
            check_batch(batch)
    with pytest.raises(ValueError, match="batch size 2 != expected 4"):
        check_batch(good_batch(), batch_size=4)
    with pytest.raises(ValueError, match="model input"):
        check_batch(good_batch(), image_size=(384, 512))
