"""One test (at least) per fix in recbole_anchor.compat, each failing without its fix."""
import math
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

from recbole.config import configurator
import recbole_anchor.compat.weights_only_checkpoints as checkpoint
from recbole_anchor import compat
from recbole_anchor.errors import CheckpointError
from recbole_anchor.model.general_recommender import AnchorMultVAE
from recbole_anchor.registry import build_model, get_trainer

from conftest import FAST, make_config, prepare


def _fit(config, epochs=1):
    config["epochs"] = epochs
    dataset, (train_data, valid_data, test_data) = prepare(config)
    torch.manual_seed(0)
    model = build_model(config, train_data._dataset)  # with held-out users' fold-in
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    return trainer, test_data


def test_another_recbole_release_is_named_in_one_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert compat.check_recbole_version("1.2.1")
        assert not compat.check_recbole_version("1.3.0")
    (warning,) = caught
    message = str(warning.message)
    assert "\n" not in message and "RecBole 1.3.0" in message and "recbole==1.2.1" in message


def test_numpy_aliases_work_on_numpy_2():
    configurator.Config.compatibility_settings(None)  # RecBole's own raised here
    assert np.long is not None and np.bool is np.bool_
    # RecBole's GAUC metric builds arrays with np.bool.
    from recbole.evaluator.metrics import GAUC

    value = GAUC(make_config()).metric_info(
        np.array([3.0, 5.0]), np.array([10, 10]), np.array([2, 2])
    )
    assert 0 <= value <= 1


def test_recbole_quick_start_imports_without_ray():
    code = textwrap.dedent(
        """
        import sys
        import recbole_anchor
        import recbole.quick_start as qs
        assert "ray" not in sys.modules, "ray was imported at module load"
        try:
            qs.quick_start.tune.run  # what HyperTuning with Ray needs
        except ImportError as err:
            assert "Ray Tune is not usable" in str(err)
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_checkpoints_load_weights_only_and_evaluate_loads_best(workdir):
    trainer, test_data = _fit(make_config("EASE"))
    state = torch.load(trainer.saved_model_file, weights_only=True)
    assert state["config"]["model"] == "EASE"
    fresh = trainer.evaluate(test_data, load_best_model=False)
    reloaded = trainer.evaluate(test_data, load_best_model=True)
    assert dict(fresh) == dict(reloaded)


def test_recbole_own_trainer_saves_and_resumes_weights_only(workdir):
    """RecBole's own Trainer (as RecBole's run_recbole builds it), with the fix alone."""
    from recbole.utils import get_trainer as recbole_get_trainer

    config = make_config("AnchorMultVAE", epochs=2)
    dataset, (train_data, valid_data, _) = prepare(config)
    trainer_class = recbole_get_trainer(config["MODEL_TYPE"], config["model"])
    trainer = trainer_class(config, build_model(config, train_data._dataset))
    trainer.fit(train_data, valid_data, saved=True, show_progress=False)
    state = torch.load(trainer.saved_model_file, weights_only=True)  # RecBole's own failed here
    assert state["epoch"] >= 0 and state["config"]["model"] == "AnchorMultVAE"
    config["epochs"] = 3
    resumed = trainer_class(config, build_model(config, train_data._dataset))
    resumed.resume_checkpoint(trainer.saved_model_file)
    assert resumed.start_epoch == state["epoch"] + 1
    assert resumed.optimizer.state_dict()["state"]


def test_load_data_and_model_rebuilds_a_plugin_model(workdir):
    from recbole.quick_start import load_data_and_model

    trainer, test_data = _fit(make_config("AnchorMultVAE"))
    config, model, _, _, _, test2 = load_data_and_model(trainer.saved_model_file)
    assert isinstance(model, AnchorMultVAE) and config["model"] == "AnchorMultVAE"
    trainer.model.eval(), model.eval()
    users = {model.USER_ID: torch.arange(1, 20)}
    assert torch.equal(trainer.model.full_sort_predict(users), model.full_sort_predict(users))


def test_resume_continues_from_the_checkpoint(workdir):
    trainer, _ = _fit(make_config("AnchorMultVAE", epochs=2), epochs=2)
    config = make_config("AnchorMultVAE", epochs=3)
    dataset, (train_data, valid_data, _) = prepare(config)
    model = build_model(config, train_data._dataset)
    resumed = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    resumed.resume_checkpoint(trainer.saved_model_file)
    assert resumed.start_epoch == 2
    assert int(model.step) == int(trainer.model.step) == 2 * len(train_data)
    assert resumed.optimizer.state_dict()["state"], "optimizer state not restored"
    resumed.fit(train_data, valid_data, saved=True, show_progress=False)
    assert int(model.step) == 3 * len(train_data)


def test_pickled_recbole_checkpoints_need_explicit_trust(workdir):
    config = make_config("MultiVAE")
    legacy = workdir / "legacy.pth"
    torch.save({"config": config, "state_dict": {}, "epoch": 0}, legacy)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        checkpoint.load_checkpoint(legacy)
    state = checkpoint.load_checkpoint(legacy, trust_checkpoint=True)
    assert state["config"]["model"] == "MultiVAE"


def test_config_plain_data_round_trip():
    config = make_config()
    plain = checkpoint.config_to_plain(config)
    restored = checkpoint.decode_plain(plain)
    assert restored["MODEL_TYPE"] == config["MODEL_TYPE"]
    assert restored["device"] == config["device"]
    assert restored["eval_args"] == config["eval_args"]


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU"))])
def test_a_checkpoints_arrays_come_back_from_any_device(tmp_path, device):
    """EASE keeps numpy and scipy matrices beside its weights; a GPU run loads its best
    checkpoint with map_location='cuda', which puts their tensors on the GPU (every EASE
    run on CUDA failed at its test evaluation before)."""
    import scipy.sparse as sp

    arrays = {"item_similarity": np.arange(6.0).reshape(2, 3),
              "interaction_matrix": sp.random(4, 5, density=0.5, format="csr", random_state=0)}
    path = tmp_path / "state.pth"
    torch.save({"state_dict": {}, "other_parameter": checkpoint.encode_arrays(arrays)}, path)
    loaded = checkpoint.load_checkpoint(path, map_location=device)["other_parameter"]
    assert np.array_equal(loaded["item_similarity"], arrays["item_similarity"])
    assert (loaded["interaction_matrix"] != arrays["interaction_matrix"]).nnz == 0
    assert loaded["interaction_matrix"].format == "csr"


def _write_items_dataset(folder, name, item_file):
    """``folder/name/``: 5 users x 4 items of interactions and the item file's text."""
    (folder / name).mkdir()
    inter = ["user_id:token\titem_id:token"] + [f"{u}\t{i}" for u in range(1, 6) for i in range(1, 5)]
    (folder / name / f"{name}.inter").write_text("\n".join(inter) + "\n")
    (folder / name / f"{name}.item").write_text(item_file)


def test_missing_feature_values_are_filled(tmp_path):
    _write_items_dataset(tmp_path, "tiny", (
        "item_id:token\tprice:float\tbrand:token\n1\t1.0\ta\n2\t\tb\n3\t3.0\t\n4\t5.0\ta\n"
    ))
    config = make_config(
        "BPR",
        dataset="tiny",
        data_path=str(tmp_path),
        load_col={"inter": ["user_id", "item_id"], "item": ["item_id", "price", "brand"]},
    )
    from recbole.data import create_dataset

    dataset = create_dataset(config)
    feat = dataset.item_feat  # a DataFrame until the dataset is built
    assert not feat["price"].isna().any() and not feat["brand"].isna().any()
    by_item = feat.set_index("item_id")
    assert math.isclose(by_item.loc[dataset.token2id("item_id", "2"), "price"], 3.0)  # mean
    assert by_item.loc[dataset.token2id("item_id", "3"), "brand"] == 0  # [PAD]


def test_missing_sequence_values_load_as_empty_sequences(tmp_path):
    """pandas 3 made _load_feat's in-place fill a no-op; a missing token_seq or
    float_seq cell then crashed the split. It loads as an empty sequence now."""
    _write_items_dataset(tmp_path, "seqs", (
        "item_id:token\tgenre:token_seq\tscores:float_seq\n"
        "1\tAction Drama\t1.0 2.0\n2\t\t\n3\tDrama\t3.5\n4\tComedy\t\n"
    ))
    config = make_config(
        "BPR", dataset="seqs", data_path=str(tmp_path),
        load_col={"inter": ["user_id", "item_id"], "item": ["item_id", "genre", "scores"]},
    )
    from recbole.data import create_dataset

    dataset = create_dataset(config)
    by_item = dataset.item_feat.set_index("item_id")
    item = {token: dataset.token2id("item_id", token) for token in "1234"}
    assert len(by_item.loc[item["2"], "genre"]) == 0 and len(by_item.loc[item["2"], "scores"]) == 0
    assert len(by_item.loc[item["4"], "scores"]) == 0
    assert len(by_item.loc[item["1"], "genre"]) == 2
    assert list(by_item.loc[item["1"], "scores"]) == [1.0, 2.0]


def test_loading_sequence_features_shows_no_chained_assignment_warning(tmp_path):
    """RecBole's no-op chained fillna on sequence columns made pandas 3 warn on every
    load; silenced (pytest.ini silences it for the suite, so this runs outside it)."""
    _write_items_dataset(tmp_path, "seqs", "item_id:token\tgenre:token_seq\n1\tA B\n2\t\n3\tB\n4\tC\n")
    code = textwrap.dedent(
        f"""
        import recbole_anchor
        from recbole.config import Config
        from recbole.data import create_dataset
        config = Config(model="BPR", dataset="seqs", config_dict={{
            "data_path": {str(tmp_path)!r}, "state": "ERROR", "load_col": None}})
        print(len(create_dataset(config).item_feat))
        """
    )
    result = subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1] == "5"  # 4 items and [PAD]
    assert "ChainedAssignmentError" not in result.stderr, result.stderr[-3000:]


def test_ract_stages_chain_through_weights_only_checkpoints(workdir):
    """RaCT's pre-training stages save with PretrainTrainer; the next stage loads that
    file with torch.load's weights-only default."""
    from recbole_anchor import run_recbole_anchor

    tiny = {**FAST, "pretrain_epochs": 1, "save_step": 1, "epochs": 1,
            "mlp_hidden_size": [32], "latent_dimension": 16, "critic_layers": [8]}
    run_recbole_anchor("RaCT", "ml-100k", config_dict={**tiny, "train_stage": "actor_pretrain"},
                       cmd_args=[])
    (actor,) = (workdir / "saved").glob("RaCT-ml-100k-1.pth")
    torch.load(actor, weights_only=True)
    run_recbole_anchor("RaCT", "ml-100k", cmd_args=[], config_dict={
        **tiny, "train_stage": "critic_pretrain", "pre_model_path": str(actor)})
    (critic,) = (workdir / "saved").glob("RaCT-ml-100k-1.pth")
    result = run_recbole_anchor("RaCT", "ml-100k", cmd_args=[], config_dict={
        **tiny, "train_stage": "finetune", "pre_model_path": str(critic)})
    assert 0 < result["test_result"]["ndcg@100"] <= 1


def test_a_first_run_shows_no_warning_and_its_results_once(workdir):
    """What a new user sees: no warnings from RecBole's calls (pandas 3's read-only
    arrays, torch.cuda.amp), ``use_gpu`` that matches the device, and the results once."""
    script = os.path.join(os.path.dirname(__file__), "..", "run_recbole_anchor.py")
    result = subprocess.run(
        [sys.executable, script, "--model=AnchorMultVAE", "--dataset=ml-100k", "--epochs=1"],
        capture_output=True, text=True, cwd=workdir,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "Warning" not in output, [line for line in output.splitlines() if "Warning" in line]
    assert output.count("test result") == 1 and output.count("by user activity") == 1
    if not torch.cuda.is_available():
        assert "use_gpu = False" in output and "device = cpu" in output
