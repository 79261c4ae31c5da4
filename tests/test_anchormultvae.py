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
    plain = _model(ml100k, anchor_weight=0.0, total_anneal_steps=100, sparse_input=False)
    anchored = _model(ml100k, anchor_weight=0.3, total_anneal_steps=100, sparse_input=False)
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
    beta = 4 / 100
    assert beta < plain.anneal_cap  # on the ramp, below the cap
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


def _record_posteriors(model):
    """Wrap ``model.encode`` so that each call's (mask, mu, logvar) is kept."""
    calls = []
    encode = model.encode

    def recording(rows, mask=None):
        mu, logvar = encode(rows, mask=mask)
        calls.append((model.training if mask is None else mask, mu, logvar))
        return mu, logvar

    model.encode = recording
    return calls


@pytest.mark.parametrize("sparse_input", [True, False])
def test_anchor_loss_is_weighted_mean_l_a_of_unmasked_rows_and_masked_posterior(ml100k, sparse_input):
    """The third loss is lambda_A(t) * mean_u L_A(S_u, mu_u, logvar_u): S_u the user's
    full (unmasked) item set, (mu, logvar) the posterior of the masked input. L_A by
    hand from the closed form ||mu - e_bar||^2 + tr(Sigma) + mean_i ||e_i - e_bar||^2,
    and, as a second check, from a Monte-Carlo estimate of mean_i E_z ||z - e_i||^2."""
    model = _model(ml100k, anchor_weight=0.3, anchor_warmup_steps=10, sparse_input=sparse_input)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():  # anchors of the scale of mu, so every part of L_A matters
        model.anchor.anchors.copy_(torch.randn(model.anchor.anchors.shape, generator=generator) / 2)
    model.step.fill_(4)
    users = torch.nonzero(model._row_ptr.diff() > 0).squeeze(1)[::80][:8]  # training users
    calls = _record_posteriors(model)
    torch.manual_seed(3)
    _, _, anchor_term = model.calculate_loss(_interaction(model, users))
    ((masked, mu, logvar),) = calls
    mu, logvar = mu.detach().double(), logvar.detach().double()
    rows = model.get_rating_matrix(users)
    with torch.no_grad():
        clean_mu, _ = model.encode(rows, mask=False)
    assert masked and not torch.allclose(clean_mu.double(), mu)  # a masked draw

    anchors = model.anchor.anchors.detach().double()
    closed, estimate, std_error = [], [], []
    generator = torch.Generator().manual_seed(0)
    draws = 4000
    for u in range(len(users)):
        e_s = anchors[rows[u] > 0]  # the full item set, not the masked one
        e_bar = e_s.mean(0)
        closed.append(
            (mu[u] - e_bar).pow(2).sum() + logvar[u].exp().sum() + (e_s - e_bar).pow(2).sum(1).mean()
        )
        eps = torch.randn(draws, mu.shape[1], generator=generator, dtype=torch.float64)
        z = mu[u] + eps * (0.5 * logvar[u]).exp()
        per_draw = torch.cdist(z, e_s).pow(2).mean(1)
        estimate.append(per_draw.mean())
        std_error.append(per_draw.std() / math.sqrt(draws))
    closed, estimate, std_error = map(torch.stack, (closed, estimate, std_error))
    assert torch.all((closed - estimate).abs() < 5 * std_error)
    weight = 0.3 * 4 / 10  # lambda_A(t) at t = 4 of a 10-step warm-up
    assert anchor_term.item() == pytest.approx(weight * closed.mean().item(), rel=1e-5)
    assert abs(anchor_term.item() - weight * estimate.mean().item()) < 5 * weight * std_error.max().item()


def test_beta_ramps_inside_calculate_loss_over_the_first_steps(ml100k):
    """Each training call t weighs the KL of its posterior with beta_t =
    min(anneal_cap, t / total_anneal_steps) and advances the step by one: 0, 1/8, ...,
    then the cap."""
    model = _model(ml100k, anneal_cap=0.5, total_anneal_steps=8, anchor_weight=0.0)
    calls = _record_posteriors(model)
    users = _users(ml100k, 32)
    betas = []
    for t in range(11):
        assert int(model.step) == t
        _, kl_term, _ = model.calculate_loss(_interaction(model, users))
        _, mu, logvar = calls[-1]
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
        betas.append(kl_term.item() / kl.item())
    assert int(model.step) == 11
    assert betas == pytest.approx([0, 1 / 8, 2 / 8, 3 / 8, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5], abs=1e-6)


def test_step_does_not_advance_in_evaluation(ml100k):
    """predict, full_sort_predict (in either mode) and calculate_loss in eval mode
    leave the step, and with it the beta and lambda_A schedules, where they are;
    eval-mode losses use beta at the current step."""
    model = _model(ml100k, anneal_cap=0.5, total_anneal_steps=8, anchor_weight=0.2)
    model.step.fill_(3)
    users = _users(ml100k, 16)
    batch = _interaction(model, users)
    pairs = {model.USER_ID: users, model.ITEM_ID: torch.arange(1, 17)}
    for training in (True, False):
        model.train(training)
        with torch.no_grad():
            model.full_sort_predict(batch)
            model.predict(pairs)
    model.eval()
    calls = _record_posteriors(model)
    with torch.no_grad():
        _, kl_term, _ = model.calculate_loss(batch)
    assert int(model.step) == 3
    _, mu, logvar = calls[-1]
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
    assert kl_term.item() == pytest.approx(3 / 8 * kl.item(), rel=1e-6)


def test_trainer_validation_does_not_advance_the_step(tmp_path, monkeypatch):
    """A run validated after every epoch ends at step = epochs x batches; the best
    checkpoint holds the step of its own epoch."""
    from recbole_anchor import run_recbole_anchor
    from tiny_dataset import N_USERS, TINY_MODEL, write_tiny_dataset

    monkeypatch.chdir(tmp_path)
    write_tiny_dataset(tmp_path / "data")
    settings = {"data_path": str(tmp_path / "data"), "epochs": 3, "eval_step": 1,
                "show_progress": False, "state": "ERROR", "checkpoint_dir": "saved", **TINY_MODEL}
    run_recbole_anchor("AnchorMultVAE", "tiny", config_dict=settings, cmd_args=[])
    batches = math.ceil(N_USERS / TINY_MODEL["train_batch_size"])  # every user trains (RS split)
    states = {
        path.name.endswith("-last.pth"): torch.load(path, map_location="cpu", weights_only=False)
        for path in (tmp_path / "saved").glob("*.pth")
    }
    assert int(states[True]["state_dict"]["step"]) == 3 * batches
    best = states[False]
    assert int(best["state_dict"]["step"]) == (best["epoch"] + 1) * batches


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
