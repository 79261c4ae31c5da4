"""AnchorMultVAE: Mult-VAE when anchor_weight is 0, anchors in training only."""
import math

import pytest
import torch
import torch.nn.functional as F
from recbole.data.dataloader import UserDataLoader
from recbole.model.general_recommender.multivae import MultiVAE

from recbole_anchor.errors import InvalidConfigError
from recbole_anchor.model.general_recommender import AnchorMultVAE

from conftest import make_config


def _model(ml100k, **overrides):
    config, _, (train_data, _, _) = ml100k
    for key, value in overrides.items():
        config[key] = value
    try:
        torch.manual_seed(0)
        return AnchorMultVAE(config, train_data._dataset)
    finally:
        for key in overrides:
            config[key] = make_config()[key]


def _users(ml100k, n=64):
    return torch.arange(1, n + 1)


def _interaction(model, users):
    return {model.USER_ID: users}


def test_rows_equal_recbole_history_rows(ml100k):
    """The CSR path builds the same binary user rows as RecBole's padded history."""
    config, _, (train_data, _, _) = ml100k
    model = _model(ml100k)
    ids, values, _ = train_data._dataset.history_item_matrix()
    users = torch.tensor([1, 5, 17, 300, train_data._dataset.user_num - 1])
    reference = torch.zeros(len(users), model.n_items)
    for row, u in enumerate(users):
        reference[row, ids[u][values[u] > 0]] = 1.0
    assert torch.equal(model.get_rating_matrix(users), reference)


def test_zero_anchor_weight_is_recbole_multivae_loss(ml100k):
    """With anchor_weight 0 and RecBole MultiVAE's weights, the losses are equal
    (evaluation mode: no masking, z = mu; fixed beta)."""
    config, _, (train_data, _, _) = ml100k
    ours = _model(ml100k, anchor_weight=0.0, total_anneal_steps=0)
    config["latent_dimension"] = 2 * ours.latent_dim  # RecBole's counts mu and logvar
    config["total_anneal_steps"] = 0
    try:
        theirs = MultiVAE(config, train_data._dataset)
    finally:
        config["latent_dimension"] = ours.latent_dim
        config["total_anneal_steps"] = make_config()["total_anneal_steps"]
    theirs.encoder.load_state_dict(ours.encoder.state_dict())
    theirs.decoder.load_state_dict(ours.decoder.state_dict())
    ours.eval(), theirs.eval()
    batch = _interaction(ours, _users(ml100k))
    assert sum(ours.calculate_loss(batch)).item() == pytest.approx(
        theirs.calculate_loss(batch).item(), rel=1e-6
    )


def test_zero_anchor_weight_loss_is_the_mult_vae_formula(ml100k):
    """In training (masking, eps ~ N(0, 1)) the loss is NLL + beta*KL, anchor part 0,
    and the NLL and KL parts do not depend on the anchor weight."""
    users = _users(ml100k)
    # The dense reference path draws the same input mask as the dense formula below.
    plain = _model(ml100k, anchor_weight=0.0, total_anneal_steps=10, sparse_input=False)
    anchored = _model(ml100k, anchor_weight=0.3, total_anneal_steps=10, sparse_input=False)
    assert all(
        torch.equal(a, b)
        for a, b in zip(plain.encoder.state_dict().values(), anchored.encoder.state_dict().values())
    )
    plain.step.fill_(4)
    anchored.step.fill_(4)
    torch.manual_seed(3)
    nll0, kl0, anchor0 = plain.calculate_loss(_interaction(plain, users))
    torch.manual_seed(3)
    nll1, kl1, anchor1 = anchored.calculate_loss(_interaction(anchored, users))
    assert anchor0.item() == 0.0 and anchor1.item() > 0.0
    assert torch.equal(nll0, nll1) and torch.equal(kl0, kl1)

    # Recompute Mult-VAE's loss by hand with the same mask and noise.
    rows = plain.get_rating_matrix(users)
    torch.manual_seed(3)
    h = F.dropout(F.normalize(rows, dim=1), plain.dropout_prob, training=True)
    h = plain.encoder(h)
    mu, logvar = h[:, : plain.latent_dim], h[:, plain.latent_dim :]
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    nll = -(F.log_softmax(plain.decoder(z), 1) * rows).sum(1).mean()
    kl = -0.5 * torch.mean(torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1))
    beta = min(plain.anneal_cap, 4 / 10)
    assert nll0.item() == pytest.approx(nll.item(), rel=1e-6)
    assert kl0.item() == pytest.approx(beta * kl.item(), rel=1e-6)
    assert int(plain.step) == 5


def test_gradients_reach_anchors_and_encoder_not_decoder(ml100k):
    model = _model(ml100k, anchor_weight=0.5)
    _, _, anchor_term = model.calculate_loss(_interaction(model, _users(ml100k)))
    anchor_term.backward()
    assert model.anchor.anchors.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.decoder.parameters())


def test_zero_anchor_weight_leaves_anchors_unused(ml100k):
    model = _model(ml100k, anchor_weight=0.0)
    sum(model.calculate_loss(_interaction(model, _users(ml100k)))).backward()
    assert model.anchor.anchors.grad is None
    assert all(p.grad is not None for p in model.decoder.parameters())


def test_inference_is_the_encoder_mean_and_ignores_anchors(ml100k):
    model = _model(ml100k)
    batch = _interaction(model, _users(ml100k, 10))
    model.train()  # even in training mode: no masking, no sampling
    scores = model.full_sort_predict(batch)
    with torch.no_grad():
        model.anchor.anchors.add_(torch.randn_like(model.anchor.anchors))
    assert torch.equal(scores, model.full_sort_predict(batch))
    rows = model.get_rating_matrix(batch[model.USER_ID])
    mu = model.encoder(F.normalize(rows, dim=1))[:, : model.latent_dim]
    assert torch.allclose(scores, model.decoder(mu).view(-1), atol=1e-6)


def test_beta_anneals_to_the_cap(ml100k):
    model = _model(ml100k, anneal_cap=0.2, total_anneal_steps=1000)
    assert model.kl_beta(0) == 0.0
    assert model.kl_beta(100) == pytest.approx(0.1)
    assert model.kl_beta(10_000) == 0.2


def test_one_epoch_is_one_batch_per_train_batch_size_users(ml100k):
    """One row per training user per epoch (ml-100k's preset is the SG split, so the
    training users are those not held out)."""
    config, dataset, (train_data, _, _) = ml100k
    assert isinstance(train_data, UserDataLoader)
    uid = config["USER_ID_FIELD"]
    training_users = torch.unique(train_data._dataset.inter_feat[uid]).tolist()
    assert len(training_users) < dataset.user_num - 1  # held-out users exist
    assert len(train_data) == math.ceil(len(training_users) / config["train_batch_size"])
    batches = [batch[uid] for batch in train_data]
    assert len(batches) == len(train_data)
    assert sorted(torch.cat(batches).tolist()) == training_users


@pytest.mark.parametrize(
    "key,value",
    [
        ("anchor_weight", -0.1),
        ("anchor_weight", float("nan")),  # NaN compares false with every bound
        ("anneal_cap", float("inf")),
        ("dropout_prob", 1.0),
        ("dropout_prob", -0.2),
        ("latent_dimension", 0),
        ("mlp_hidden_size", [600, 0]),
        ("mlp_hidden_size", 600),
        ("anneal_cap", -1),
        ("total_anneal_steps", -5),
        ("anchor_warmup_steps", 1.5),
        ("anchor_init_std", "big"),
        ("anchor_terms", ["pull", "other"]),
    ],
)
def test_invalid_hyperparameters_are_refused(key, value):
    with pytest.raises(InvalidConfigError, match=key):
        make_config(**{key: value})
