"""The tfds ``nyu_depth_v2`` adapter, on a tiny dataset prepared here in ArrayRecord format (no TensorFlow,
no download): a builder with the real features spec and three generated examples."""

import pickle

import numpy as np
import pytest
from PIL import Image

from data_pipelines.config import DataConfig
from data_pipelines.errors import DataError
from data_pipelines.pipeline import build_eval
from data_pipelines.sources.tfds_nyu import TFDSNYUSource


def _example(i: int) -> dict:
    image = np.zeros((480, 640, 3), np.uint8)
    image[..., 0] = 40 * i
    image[:, 320:, 1] = 200
    depth = np.full((480, 640), 1.5 + i, np.float16)
    depth[0, :10] = 0.0  # invalid
    return {"image": Image.fromarray(image), "depth": depth}  # PIL images encode without TensorFlow


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory) -> str:
    import tracemalloc  # noqa: F401  (see data_pipelines/sources/tfds_nyu.py: imported before tfds' lazy imports)

    import tensorflow_datasets as tfds
    from tensorflow_datasets.core import registered
    from tensorflow_datasets.datasets.nyu_depth_v2 import nyu_depth_v2_dataset_builder as nyu

    with registered.skip_registration():

        class TinyNYU(nyu.Builder):
            name = "nyu_depth_v2"

            def _info(self):
                return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                    "image": tfds.features.Image(shape=(480, 640, 3)),
                    "depth": tfds.features.Tensor(shape=(480, 640), dtype=np.float16)}))

            def _split_generators(self, dl_manager):
                return {"train": self._generate(1), "validation": self._generate(3)}

            def _generate(self, n):
                for i in range(n):
                    yield f"frame_{i}", _example(i)

    data_dir = str(tmp_path_factory.mktemp("tfds"))
    TinyNYU(data_dir=data_dir).download_and_prepare(
        file_format=tfds.core.file_adapters.FileFormat.ARRAY_RECORD,
        download_config=tfds.download.DownloadConfig(verify_ssl=False))
    return data_dir


def test_tfds_source_reads_prepared_split(tfds_dir):
    src = TFDSNYUSource(tfds_dir, "validation")
    assert len(src) == 3
    seen = set()
    for k in range(3):  # tfds stores records in its own shuffled order; the depth value says which frame
        ex = src[k]
        assert ex["image"].shape == (480, 640, 3) and ex["image"].dtype == np.uint8
        i = int(round(float(ex["depth"][100, 100]) - 1.5))
        seen.add(i)
        assert ex["image"][0, 0, 0] == 40 * i and ex["image"][0, 400, 1] == 200
        assert ex["depth"][100, 100] == pytest.approx(1.5 + i)
        assert not ex["valid"][0, :10].any() and ex["valid"][1:].all()
        assert ex["focal"] == pytest.approx(518.8579) and ex["domain"] == 0
    assert seen == {0, 1, 2}


def test_tfds_source_pickles_for_workers(tfds_dir):
    src = TFDSNYUSource(tfds_dir, "validation")
    clone = pickle.loads(pickle.dumps(src))
    assert clone._records is None  # file handles are not shipped; reopened on first access
    np.testing.assert_array_equal(clone[1]["depth"], src[1]["depth"])


def test_tfds_source_refuses_unprepared_dir(tmp_path):
    with pytest.raises(DataError, match="never downloads"):
        TFDSNYUSource(str(tmp_path), "train")


def test_tfds_source_in_eval_pipeline(tfds_dir):
    cfg = DataConfig.from_dict({"sources": [{"name": "nyu_tfds", "root": tfds_dir, "split": "validation"}],
                                "batch_size": 2, "image_size": [24, 32]})
    batches = list(build_eval(cfg, 0, 1))
    assert len(batches) == 2  # 3 examples + 1 blank pad
    assert batches[0]["image"].shape == (2, 24, 32, 3) and batches[0]["depth"].shape == (2, 480, 640)
    assert batches[1]["valid"][0].any() and not batches[1]["valid"][1].any()
