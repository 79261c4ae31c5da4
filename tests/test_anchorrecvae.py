"""AnchorRecVAE: RecBole's RecVAE plus the anchor term in the encoder phase only."""
import contextlib
import math
import sys

import pytest
import torch
from recbole.data.interaction import Interaction
from recbole.model.general_recommender.recvae import RecVAE
from recbole.utils import init_seed

from recbole_anchor import Config
from recbole_anchor.data.loading import create_dataset, data_preparation
from recbole_anchor.errors import InvalidConfigError
from recbole_anchor.model.anchor import ANCHOR_CONFIG_KEYS
from recbole_anchor.model.general_recommender.anchorrecvae import AnchorRecVAE
from recbole_anchor.registry import get_trainer
from recbole_anchor.resources import property_file
from recbole_anchor.trainer import AnchorRecVAETrainer

SMALL = {"hidden_dimension": 32, "latent_dimension": 8, "train_batch_size": 256}


@pytest.fixture(scope="module")
def ml100k(tmp_path_factory):
    """Config and training data of ml-100k for a small AnchorRecVAE."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("run"))
        patch.setattr(sys, "argv", ["pytest"])
        config = Config("AnchorRecVAE", "ml-100k", config_dict=SMALL, cmd_args=[])
        init_seed(config["seed"], True)
        dataset = create_dataset(config)
        train_data, _, _ = data_preparation(config, dataset)
        yield config, train_data


@contextlib.contextmanager
def overridden(config, **values):
    saved = {key: config[key] for key in values}
    for key, value in values.items():
        config[key] = value
    try:
        yield config
    finally:
        for key, value in saved.items():
            config[key] = value


def _models(config, train_data, anchor_weight, noise_std=0.01):
    """RecBole's RecVAE and an AnchorRecVAE on RecBole's dense rows built from the same
    seed (by default with RecBole's reparameterization noise, ``noise_std`` 0.01)."""
    torch.manual_seed(0)
    recvae = RecVAE(config, train_data._dataset)
    torch.manual_seed(0)
    with overridden(config, anchor_weight=anchor_weight, noise_std=noise_std,
                    sparse_input=False):
        anchored = AnchorRecVAE(config, train_data._dataset)
    return recvae, anchored


def _batch(config, users=100):
    return Interaction({config["USER_ID_FIELD"]: torch.arange(1, users + 1)})


def _loss(model, batch, encoder_flag, seed=1):
    torch.manual_seed(seed)
    return model.calculate_loss(batch, encoder_flag=encoder_flag)


def test_default_noise_is_unit_as_in_shenbin_et_al(ml100k):
    """The default ``noise_std`` 1.0 samples eps ~ N(0, I): z - mu = eps * sigma."""
    config, train_data = ml100k
    assert config["noise_std"] == 1.0
    torch.manual_seed(0)
    model = AnchorRecVAE(config, train_data._dataset)
    mu = torch.zeros(2000, config["latent_dimension"])
    logvar = torch.full_like(mu, math.log(4.0))  # sigma = 2
    model.train()
    eps = (model.reparameterize(mu, logvar) - mu) / 2.0
    assert abs(float(eps.std()) - 1.0) < 0.02 and abs(float(eps.mean())) < 0.02
    with overridden(config, noise_std=0.01):
        recbole_like = AnchorRecVAE(config, train_data._dataset)
    recbole_like.train()
    torch.manual_seed(3)
    ours = recbole_like.reparameterize(mu, logvar)
    torch.manual_seed(3)
    theirs = RecVAE.reparameterize(recbole_like, mu, logvar)
    assert torch.equal(ours, theirs)
    model.eval()
    assert torch.equal(model.reparameterize(mu, logvar), mu)


def test_anchor_weight_zero_is_exactly_recvae(ml100k):
    """With ``anchor_weight: 0`` and ``noise_std: 0.01`` AnchorRecVAE is RecBole's RecVAE:
    same weights, losses and predictions on the same seed."""
    config, train_data = ml100k
    recvae, anchored = _models(config, train_data, anchor_weight=0.0)
    anchored_state = anchored.state_dict()
    for key, value in recvae.state_dict().items():
        assert torch.equal(value, anchored_state[key]), key
    batch = _batch(config)
    for encoder_flag in (True, False):
        expected = _loss(recvae, batch, encoder_flag)
        assert torch.equal(_loss(anchored, batch, encoder_flag), expected)
    recvae.eval(), anchored.eval()
    assert torch.equal(anchored.full_sort_predict(batch), recvae.full_sort_predict(batch))


def test_rows_are_kept_once_as_csr_and_equal_recboles_rows(ml100k):
    """Both ``sparse_input`` settings keep the training rows as CSR buffers only, not
    RecBole's padded history matrix besides, and densify RecBole's rows from them."""
    config, train_data = ml100k
    recvae, dense = _models(config, train_data, anchor_weight=0.5)
    sparse = AnchorRecVAE(config, train_data._dataset)
    users = torch.tensor([1, 5, 17, 300, train_data._dataset.user_num - 1])
    for model in (dense, sparse):
        assert not hasattr(model, "history_item_id")
        assert torch.equal(model.get_rating_matrix(users), recvae.get_rating_matrix(users))
    assert torch.equal(sparse.user_rows(users).to_dense(), recvae.get_rating_matrix(users))


def test_sparse_rows_compute_what_recboles_dense_rows_compute(ml100k):
    """``sparse_input: True`` (the default): the same weights give RecBole's dense-row
    losses (both phases, anchor term included), gradients and full-ranking scores up to
    float rounding. Without dropout and noise the two paths draw nothing random."""
    config, train_data = ml100k
    assert config["sparse_input"] is True
    models = {}
    for sparse in (True, False):
        torch.manual_seed(0)
        with overridden(config, sparse_input=sparse, dropout_prob=0.0, noise_std=0.0,
                        anchor_weight=0.5):
            models[sparse] = AnchorRecVAE(config, train_data._dataset)
    for model in models.values():
        model.update_prior()  # the old encoder = the current one, as after an epoch
    batch = _batch(config)
    for encoder_flag in (True, False):
        losses, grads = {}, {}
        for sparse, model in models.items():
            model.zero_grad(set_to_none=True)
            losses[sparse] = _loss(model, batch, encoder_flag)
            losses[sparse].backward()
            grads[sparse] = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        assert losses[True].item() == pytest.approx(losses[False].item(), rel=1e-5)
        assert grads[True].keys() == grads[False].keys() and grads[True]
        for name, grad in grads[False].items():
            assert torch.allclose(grads[True][name], grad, rtol=1e-4, atol=1e-6), name
    for model in models.values():
        model.eval()
    assert torch.allclose(models[True].full_sort_predict(batch),
                          models[False].full_sort_predict(batch), rtol=1e-4, atol=1e-5)


def test_encoder_phase_adds_the_weighted_anchor_loss(ml100k):
    config, train_data = ml100k
    recvae, anchored = _models(config, train_data, anchor_weight=0.3)
    batch = _batch(config)
    difference = _loss(anchored, batch, True) - _loss(recvae, batch, True)
    rows = anchored.get_rating_matrix(batch[config["USER_ID_FIELD"]])
    torch.manual_seed(1)
    mu, logvar = anchored.encoder(rows, dropout_prob=anchored.dropout_prob)
    expected = 0.3 * anchored.anchor(rows, mu, logvar).mean()
    assert difference.item() == pytest.approx(expected.item(), rel=1e-4)
    assert torch.equal(_loss(anchored, batch, False), _loss(recvae, batch, False))


def _grads(model, batch, encoder_flag, anchor_weight):
    model.anchor_weight = anchor_weight
    model.zero_grad(set_to_none=True)
    _loss(model, batch, encoder_flag).backward()
    return {name: p.grad for name, p in model.named_parameters() if p.requires_grad}


def test_anchor_gradients_reach_encoder_and_anchors_in_encoder_phase_only(ml100k):
    config, train_data = ml100k
    _, model = _models(config, train_data, anchor_weight=1.0)
    batch = _batch(config)
    with_anchor = _grads(model, batch, True, 1.0)
    without = _grads(model, batch, True, 0.0)
    assert without["anchor.anchors"] is None
    assert with_anchor["anchor.anchors"].abs().sum() > 0
    encoder = [name for name in with_anchor if name.startswith("encoder.")]
    assert any(not torch.allclose(with_anchor[n], without[n]) for n in encoder)
    for name in with_anchor:
        if name.startswith("decoder."):
            assert torch.equal(with_anchor[name], without[name]), name

    # Decoder phase: the anchor term is absent; no gradient changes, none reaches E.
    with_anchor = _grads(model, batch, False, 1.0)
    without = _grads(model, batch, False, 0.0)
    assert with_anchor["anchor.anchors"] is None
    for name, grad in with_anchor.items():
        if grad is not None:
            assert torch.equal(grad, without[name]), name


def test_trainer_updates_anchors_with_the_encoder(ml100k, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config, train_data = ml100k
    trainer_class = get_trainer(config["MODEL_TYPE"], "AnchorRecVAE")
    assert issubclass(trainer_class, AnchorRecVAETrainer)
    _, model = _models(config, train_data, anchor_weight=0.5)
    trainer = trainer_class(config, model)
    encoder_params = {id(p) for p in trainer.optimizer_encoder.param_groups[0]["params"]}
    decoder_params = {id(p) for p in trainer.optimizer_decoder.param_groups[0]["params"]}
    assert id(model.anchor.anchors) in encoder_params
    assert encoder_params == {id(p) for p in model.encoder_parameters()}
    assert decoder_params == {id(p) for p in model.decoder.parameters()}
    before = model.anchor.anchors.detach().clone()
    trainer._train_epoch(train_data, 0)
    assert not torch.equal(model.anchor.anchors, before)
    batches = len(train_data)  # training users only (the SG preset holds users out)
    assert int(model.step) == config["n_enc_epochs"] * batches  # encoder steps only


BAD_ANCHOR_VALUES = [
    ("anchor_weight", -0.1),
    ("anchor_weight", "big"),
    ("anchor_weight", True),
    ("anchor_init_std", -1.0),
    ("anchor_warmup_steps", -1),
    ("anchor_warmup_steps", 2.5),
    ("anchor_terms", ["pull", "centroid"]),
    ("anchor_terms", "pull"),
]


@pytest.mark.parametrize("model", ["AnchorMultVAE", "AnchorRecVAE"])
@pytest.mark.parametrize("key, value", BAD_ANCHOR_VALUES)
def test_check_config_rejects_invalid_anchor_values(model, key, value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidConfigError, match=f"invalid {key}="):
        Config(model, "ml-100k", config_dict={key: value}, cmd_args=[])


@pytest.mark.parametrize(
    "key, value",
    [("mixture_weights", [0.5, 0.5]), ("mixture_weights", [0, 0, 0]), ("gamma", -1.0), ("n_enc_epochs", 0), ("dropout_prob", 1.0)],
)
def test_check_config_rejects_invalid_recvae_values(key, value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidConfigError, match=f"invalid {key}="):
        Config("AnchorRecVAE", "ml-100k", config_dict={key: value}, cmd_args=[])


def test_both_models_share_the_anchor_keys_and_defaults(tmp_path, monkeypatch):
    """The same anchor keys and defaults, except the weight, which each model's
    evidence sets (AnchorMultVAE 1.0, AnchorRecVAE 0.1; see their yaml comments)."""
    monkeypatch.chdir(tmp_path)
    multvae = Config("AnchorMultVAE", "ml-100k", cmd_args=[])
    recvae = Config("AnchorRecVAE", "ml-100k", cmd_args=[])
    for key in ANCHOR_CONFIG_KEYS:
        assert multvae[key] is not None and recvae[key] is not None, key
        if key != "anchor_weight":
            assert multvae[key] == recvae[key], key
    assert (multvae["anchor_weight"], recvae["anchor_weight"]) == (1.0, 0.1)


def test_anchor_terms_from_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = Config("AnchorRecVAE", "ml-100k", cmd_args=["--anchor_terms=['pull','spread']"])
    assert config["anchor_terms"] == ["pull", "spread"]


def _space(model):
    """RecBole's .hyper format: `name type low,high` or `name choice [..]` per line."""
    space = {}
    with open(property_file("hyper", model, suffix=".hyper")) as lines:
        for line in lines:
            name, kind, value = line.split()
            assert kind in ("loguniform", "uniform")
            low, high = (float(v) for v in value.split(","))
            space[name] = (kind, (math.exp(low), math.exp(high)) if kind == "loguniform" else (low, high))
    return space


@pytest.mark.parametrize("model", ["AnchorMultVAE", "AnchorRecVAE"])
def test_search_space_stays_inside_valid_config(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    space = _space(model)
    assert space["anchor_weight"][0] == "loguniform"
    assert {"dropout_prob", "learning_rate"} <= set(space)
    config = Config(model, "ml-100k", cmd_args=[])
    for name, (_, bounds) in space.items():
        assert name in config.final_config_dict
        for value in bounds:
            with overridden(config, **{name: value}):
                config.model_class.check_config(config)
