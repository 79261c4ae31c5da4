"""The shared anchor component: closed form of L_A, its parts, and the weighted term."""
import pytest
import torch

from recbole_anchor.model.anchor import (
    ANCHOR_TERMS,
    AnchorRegularized,
    ItemAnchors,
    anchor_weight_at,
)


def _batch(n_users=4, n_items=12, dim=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    rows = (torch.rand(n_users, n_items, generator=generator) < 0.4).double()
    rows[0, :3] = 1.0  # at least one non-empty user
    rows[-1] = 0.0  # one user with no items
    mu = torch.randn(n_users, dim, generator=generator, dtype=torch.float64)
    logvar = torch.randn(n_users, dim, generator=generator, dtype=torch.float64) * 0.5
    anchors = ItemAnchors(n_items, dim, init_std=1.0, seed=seed).double()
    return rows, mu, logvar, anchors


def test_closed_form_equals_monte_carlo_estimate():
    r"""L_A = mean_{i in S} E_{z~q} ||z - e_i||^2, estimated by sampling z."""
    rows, mu, logvar, anchors = _batch()
    closed = anchors(rows, mu, logvar)
    generator = torch.Generator().manual_seed(1)
    n_samples = 200_000
    for user in range(rows.shape[0]):
        items = rows[user].nonzero().squeeze(1)
        if len(items) == 0:
            assert closed[user] == 0
            continue
        eps = torch.randn(n_samples, mu.shape[1], generator=generator, dtype=torch.float64)
        z = mu[user] + eps * torch.exp(0.5 * logvar[user])
        e_s = anchors.anchors.detach()[items]
        estimate = (z[:, None, :] - e_s[None]).pow(2).sum(dim=2).mean()
        assert closed[user].item() == pytest.approx(estimate.item(), rel=1e-2)


def test_each_part_matches_its_definition_and_terms_select_them():
    rows, mu, logvar, anchors = _batch(seed=3)
    e = anchors.anchors.detach()
    user = 0
    e_s = e[rows[user].bool()]
    e_bar = e_s.mean(dim=0)
    expected = {
        "pull": (mu[user] - e_bar).pow(2).sum(),
        "variance": logvar[user].exp().sum(),
        "spread": (e_s - e_bar).pow(2).sum(dim=1).mean(),
    }
    parts = anchors.parts(rows, mu, logvar)
    assert set(parts) == set(ANCHOR_TERMS)
    for name, value in expected.items():
        assert parts[name][user].item() == pytest.approx(value.item(), rel=1e-10)
    for name in ANCHOR_TERMS:
        only = ItemAnchors(rows.shape[1], mu.shape[1], init_std=1.0, terms=[name], seed=3).double()
        assert only(rows, mu, logvar)[user].item() == pytest.approx(expected[name].item())


class _Toy(torch.nn.Module, AnchorRegularized):
    n_items = 12


def _toy(weight, warmup=0, terms=list(ANCHOR_TERMS)):
    model = _Toy()
    config = {
        "anchor_weight": weight,
        "anchor_warmup_steps": warmup,
        "anchor_init_std": 1.0,
        "anchor_terms": terms,
        "seed": 0,
    }
    model.build_anchors(config, latent_dim=3)
    return model.double()


def test_weighted_term_follows_weight_and_warmup():
    rows, mu, logvar, _ = _batch()
    model = _toy(0.5, warmup=10)
    full = model.anchor(rows, mu, logvar).mean()
    assert model.anchor_loss(rows, mu, logvar, step=5).item() == pytest.approx(0.25 * full.item())
    assert model.anchor_loss(rows, mu, logvar, step=10).item() == pytest.approx(0.5 * full.item())
    assert model.anchor_loss(rows, mu, logvar, step=0).item() == 0.0
    assert anchor_weight_at(3, 0.5, 0) == 0.5


def test_zero_weight_gives_a_zero_that_reaches_no_parameter():
    rows, mu, logvar, _ = _batch()
    mu.requires_grad_(True)
    loss = _toy(0.0).anchor_loss(rows, mu, logvar, step=100)
    assert loss.item() == 0.0 and not loss.requires_grad
