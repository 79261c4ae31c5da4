"""Config: plugin models first, RecBole fallback, priorities, dataset location."""
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
import recbole
import yaml
from recbole.model.general_recommender.multivae import MultiVAE
from recbole.utils import ModelType

from recbole_anchor.config import Config
from recbole_anchor.errors import InvalidConfigError, UnknownModelError
from recbole_anchor.model.general_recommender import AnchorMultVAE
from recbole_anchor.registry import get_model
from recbole_anchor.resources import properties_dir

from conftest import make_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_plugin_model_defaults_come_from_its_yaml():
    config = make_config("AnchorMultVAE")
    with open(os.path.join(properties_dir(), "model", "AnchorMultVAE.yaml")) as handle:
        defaults = yaml.safe_load(handle)
    assert config.model_class is AnchorMultVAE
    assert config["MODEL_TYPE"] == ModelType.GENERAL
    for key in ("latent_dimension", "anchor_weight", "mlp_hidden_size", "train_batch_size"):
        assert config[key] == defaults[key]
    assert config["train_neg_sample_args"]["distribution"] == "none"


def test_recbole_models_keep_recbole_defaults():
    config = make_config("MultiVAE")
    assert config.model_class is MultiVAE
    assert config["latent_dimension"] == 128  # RecBole's MultiVAE.yaml
    assert "anchor_weight" not in config.final_config_dict


def test_priority_command_line_over_dict_over_files(tmp_path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text("anchor_weight: 0.7\nlearning_rate: 0.01\nlatent_dimension: 64\n")
    config = Config(
        "AnchorMultVAE",
        "ml-100k",
        config_file_list=[str(config_file)],
        config_dict={"learning_rate": 0.02, "latent_dimension": 32},
        cmd_args=["--latent_dimension=16"],
    )
    assert config["anchor_weight"] == 0.7
    assert config["learning_rate"] == 0.02
    assert config["latent_dimension"] == 16


def test_unknown_models_suggest_close_names():
    with pytest.raises(UnknownModelError, match="did you mean AnchorMultVAE"):
        get_model("AnchorMultVae")
    with pytest.raises(UnknownModelError, match="did you mean MultiVAE"):
        Config("multivae", "ml-100k", cmd_args=[])
    with pytest.raises(UnknownModelError, match="unknown model 'NoSuchModel'"):
        get_model("NoSuchModel")


def test_bad_config_input_is_one_error():
    with pytest.raises(InvalidConfigError, match="no metric named 'Foo'"):
        make_config(metrics=["Foo"])
    with pytest.raises(InvalidConfigError, match="valid_metric=MRR@10 is not computed"):
        make_config(metrics=["NDCG"], valid_metric="MRR@10")
    with pytest.raises(InvalidConfigError, match="valid_metric=NDCG@20 is not computed"):
        make_config(metrics=["NDCG"], topk=[10], valid_metric="NDCG@20")
    with pytest.raises(InvalidConfigError, match="does not exist"):
        Config("AnchorMultVAE", "ml-100k", config_file_list=["missing.yaml"], cmd_args=[])
    with pytest.raises(InvalidConfigError, match="--key=value"):
        Config("AnchorMultVAE", "ml-100k", cmd_args=["epochs"])


def test_ml100k_uses_the_bundled_copy_unless_a_local_one_exists(tmp_path):
    bundled = os.path.join(os.path.dirname(recbole.__file__), "dataset_example", "ml-100k")
    config = make_config(data_path=str(tmp_path))
    assert os.path.samefile(config["data_path"], bundled)
    shutil.copytree(bundled, tmp_path / "ml-100k")
    config = make_config(data_path=str(tmp_path))
    assert os.path.samefile(config["data_path"], tmp_path / "ml-100k")


def test_config_rebuilds_from_its_final_dict():
    config = make_config()
    restored = Config.from_dict(config.final_config_dict)
    assert restored.model_class is AnchorMultVAE
    assert restored["anchor_weight"] == config["anchor_weight"]
    assert str(restored)  # RecBole's printing works on the rebuilt object


def test_a_built_wheel_ships_the_properties(tmp_path):
    """A non-editable install must find properties/ inside the package."""
    setuptools = pytest.importorskip("setuptools")
    if tuple(map(int, setuptools.__version__.split(".")[:2])) < (70, 1):
        pytest.importorskip("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-q", "-w", str(tmp_path), REPO],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("recbole_anchor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "recbole_anchor/properties/model/AnchorMultVAE.yaml" in names
