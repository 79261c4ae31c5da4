"""The anchor term of recbole_anchor.model.anchor: the closed form of L_A against its
definition, its parts, its gradients, and the weighted term lambda_A(t) L_A that the
models compose through AnchorRegularized."""
import math

import pytest
import torch

from recbole_anchor.model.anchor import (
    ANCHOR_TERMS,
    AnchorRegularized,
    ItemAnchors,
    anchor_weight_at,
)
from recbole_anchor.model.sparse_rows import SparseRows


def _batch(n_users=6, n_items=15, dim=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    rows = (torch.rand(n_users, n_items, generator=g) < 0.35).double()
    rows[torch.arange(n_users), torch.randint(0, n_items, (n_users,), generator=g)] = 1.0
    mu = torch.randn(n_users, dim, generator=g, dtype=torch.double)
    logvar = torch.randn(n_users, dim, generator=g, dtype=torch.double) * 0.5
    anchors = ItemAnchors(n_items, dim, init_std=1.0, seed=seed).double()
    return rows, mu, logvar, anchors


def test_closed_form_equals_monte_carlo_expectation():
    """L_A = mean_{i in S} E_{z~N(mu, diag exp(logvar))} ||z - e_i||^2."""
    rows, mu, logvar, anchors = _batch()
    closed = anchors(rows, mu, logvar)

    draws = 40_000
    g = torch.Generator().manual_seed(1)
    eps = torch.randn(draws, *mu.shape, generator=g, dtype=torch.double)
    z = mu + eps * torch.exp(0.5 * logvar)  # (draws, B, d)
    E = anchors.anchors.detach()
    sq_dist = (z.unsqueeze(2) - E.view(1, 1, *E.shape)).pow(2).sum(-1)  # (draws, B, I)
    per_draw = (sq_dist * rows).sum(-1) / rows.sum(-1)  # mean over S, (draws, B)
    estimate = per_draw.mean(0)
    std_error = per_draw.std(0) / math.sqrt(draws)
    assert torch.all((closed.detach() - estimate).abs() < 5 * std_error)


def test_each_part_matches_its_definition_and_terms_select_them():
    """pull ||mu - e_bar||^2, variance tr(Sigma), spread mean_{i in S} ||e_i - e_bar||^2
    for every user; a model built with one term gives exactly that part."""
    rows, mu, logvar, anchors = _batch()
    parts = anchors.parts(rows, mu, logvar)
    assert set(parts) == set(ANCHOR_TERMS)
    E = anchors.anchors.detach()
    for u in range(rows.shape[0]):
        items = E[rows[u] > 0]
        e_bar = items.mean(0)
        assert parts["pull"][u].item() == pytest.approx(((mu[u] - e_bar) ** 2).sum().item(), rel=1e-10)
        assert parts["variance"][u].item() == pytest.approx(logvar[u].exp().sum().item(), rel=1e-10)
        assert parts["spread"][u].item() == pytest.approx(((items - e_bar) ** 2).sum(1).mean().item(), rel=1e-10)
    for name in ANCHOR_TERMS:
        only = ItemAnchors(rows.shape[1], mu.shape[1], init_std=1.0, terms=[name]).double()
        only.anchors.data.copy_(anchors.anchors.data)
        assert torch.allclose(only(rows, mu, logvar), parts[name], rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="unknown anchor terms"):
        ItemAnchors(3, 2, terms=["pull", "typo"])


def test_sparse_rows_give_the_same_loss():
    rows, mu, logvar, anchors = _batch()
    sparse = SparseRows.from_dense(rows)
    assert torch.allclose(anchors(sparse, mu, logvar), anchors(rows, mu, logvar))


def test_gradients_reach_mu_logvar_and_only_the_anchors_of_items_in_s():
    rows, mu, logvar, anchors = _batch(n_items=20)
    rows[:, -3:] = 0.0  # no user in the batch has the last three items
    mu.requires_grad_(True)
    logvar.requires_grad_(True)
    anchors(rows, mu, logvar).sum().backward()
    assert mu.grad.abs().sum() > 0 and logvar.grad.abs().sum() > 0
    grad = anchors.anchors.grad
    assert torch.all(grad[-3:] == 0)
    assert torch.all(grad[:-3].abs().sum(1) > 0)


def test_users_with_no_items_contribute_nothing():
    rows, mu, logvar, anchors = _batch()
    rows[0] = 0.0
    assert anchors(rows, mu, logvar)[0].item() == 0.0


def test_initial_anchors_come_from_their_own_generator():
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    a = ItemAnchors(50, 8, init_std=0.1, seed=7)
    after = torch.rand(3)
    assert torch.equal(before, after)  # global random stream untouched
    assert torch.equal(a.anchors, ItemAnchors(50, 8, init_std=0.1, seed=7).anchors)
    assert a.anchors.std().item() == pytest.approx(0.1, rel=0.1)


class _Toy(torch.nn.Module, AnchorRegularized):
    n_items = 15


def _toy(weight, warmup=0, dim=4):
    model = _Toy()
    config = {
        "anchor_weight": weight,
        "anchor_warmup_steps": warmup,
        "anchor_init_std": 1.0,
        "anchor_terms": list(ANCHOR_TERMS),
        "seed": 0,
    }
    model.build_anchors(config, latent_dim=dim)
    return model.double()


def test_weighted_term_ramps_linearly_over_the_warmup():
    """lambda_A(t) = lambda_A min(1, t / T_warm) (lambda_A when T_warm = 0), and the
    weighted term is lambda_A(t) times the batch mean of L_A."""
    assert [anchor_weight_at(t, 0.5, 100) for t in (0, 25, 50, 100, 1000)] == pytest.approx(
        [0.0, 0.125, 0.25, 0.5, 0.5]
    )
    assert anchor_weight_at(0, 0.5, 0) == anchor_weight_at(7, 0.5, 0) == 0.5
    rows, mu, logvar, _ = _batch()
    model = _toy(0.5, warmup=10)
    mean_l_a = model.anchor(rows, mu, logvar).mean().item()
    for step, fraction in ((0, 0.0), (5, 0.5), (10, 1.0), (40, 1.0)):
        assert model.anchor_loss(rows, mu, logvar, step).item() == pytest.approx(
            0.5 * fraction * mean_l_a, rel=1e-12
        )


def test_zero_weight_gives_a_zero_that_reaches_no_parameter():
    rows, mu, logvar, _ = _batch()
    mu.requires_grad_(True)
    loss = _toy(0.0).anchor_loss(rows, mu, logvar, step=100)
    assert loss.item() == 0.0 and not loss.requires_grad
