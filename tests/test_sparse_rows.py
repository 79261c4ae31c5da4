"""The sparse-input path of AnchorMultVAE computes what the dense path computes.

Same seed, same weights: the losses, their gradients, a few Adam steps of training
and the full-ranking scores agree up to float rounding. With input masking on, the
two paths draw the mask from the random stream differently, so the mask is fixed."""
import pytest
import torch
import torch.nn.functional as F

from recbole_anchor.model.anchor import ItemAnchors, _SparseAnchorLoss
from recbole_anchor.model.general_recommender import AnchorMultVAE
from recbole_anchor.model.sparse_rows import SparseRows

from conftest import make_config, seeded_steps


def _pair(ml100k, **overrides):
    """The same model (same seed, same weights) with sparse and with dense input."""
    config, _, (train_data, _, _) = ml100k
    models = []
    for sparse in (True, False):
        settings = {"sparse_input": sparse, **overrides}
        for key, value in settings.items():
            config[key] = value
        try:
            torch.manual_seed(0)
            models.append(AnchorMultVAE(config, train_data._dataset))
        finally:
            defaults = make_config()
            for key in settings:
                config[key] = defaults[key]
    return models


def _csr(n_users=6, n_items=9, seed=0):
    generator = torch.Generator().manual_seed(seed)
    dense = (torch.rand(n_users, n_items, generator=generator) < 0.35).float()
    dense[2] = 0.0  # a user with no items
    counts = dense.sum(1).long()
    row_ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(counts, 0)])
    return dense, row_ptr, dense.nonzero()[:, 1]


def test_sparse_rows_products_equal_dense_products():
    dense, row_ptr, items = _csr()
    users = torch.tensor([4, 2, 0, 4, 5])
    rows = SparseRows.from_csr(row_ptr, items, users, dense.shape[1])
    assert torch.equal(rows.to_dense(), dense[users])
    table = torch.randn(dense.shape[1], 3, dtype=torch.float32)
    assert torch.allclose(rows.times(table), dense[users] @ table, atol=1e-6)
    normalized = F.normalize(dense[users], dim=1)
    assert torch.equal(rows.l2_normalized_values(), rows.gather(normalized))
    assert torch.allclose(
        rows.times(table, rows.l2_normalized_values()), normalized @ table, atol=1e-6
    )


def test_rows_from_dense_are_the_nonzeros_of_the_dense_rows():
    dense, row_ptr, items = _csr()
    rows = SparseRows.from_dense(dense)
    assert torch.equal(rows.to_dense(), dense)
    expected = SparseRows.from_csr(row_ptr, items, torch.arange(len(dense)), dense.shape[1])
    for got, want in zip(rows, expected):
        assert torch.equal(torch.as_tensor(got), torch.as_tensor(want))


def test_anchor_loss_is_the_same_for_sparse_rows():
    dense, row_ptr, items = _csr()
    rows = SparseRows.from_csr(row_ptr, items, torch.arange(len(dense)), dense.shape[1])
    anchors = ItemAnchors(dense.shape[1], 4, init_std=1.0, seed=1)
    mu, logvar = torch.randn(len(dense), 4), torch.randn(len(dense), 4)
    sparse_loss, dense_loss = anchors(rows, mu, logvar), anchors(dense, mu, logvar)
    assert torch.allclose(sparse_loss, dense_loss, atol=1e-5)
    assert sparse_loss[2] == 0  # the user with no items
    sparse_loss.sum().backward()
    sparse_grad = anchors.anchors.grad.clone()
    anchors.anchors.grad = None
    dense_loss.sum().backward()
    assert torch.allclose(sparse_grad, anchors.anchors.grad, atol=1e-5)


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA GPU"))],
)
@pytest.mark.parametrize(
    "terms",
    [("pull", "variance", "spread"), ("pull",), ("variance",), ("spread",), ("pull", "spread")],
)
def test_fused_sparse_anchor_gradient_equals_autograd_of_the_closed_form(terms, device):
    """The hand-written backward of the sparse path gives the gradients autograd
    takes through ItemAnchors.parts (dense rows), for every choice of anchor_terms,
    with per-user upstream weights and a user with no items; gradcheck agrees."""
    dense, row_ptr, items = _csr(n_users=7, n_items=12, seed=3)
    rows = SparseRows.from_csr(row_ptr, items, torch.arange(len(dense)), dense.shape[1])
    rows = rows._replace(user=rows.user.to(device), items=rows.items.to(device),
                         offsets=rows.offsets.to(device), counts=rows.counts.double().to(device))
    dense = dense.to(device)
    anchors = ItemAnchors(dense.shape[1], 4, init_std=1.0, terms=terms, seed=2).double().to(device)
    generator = torch.Generator().manual_seed(4)
    mu = torch.randn(len(dense), 4, dtype=torch.double, generator=generator).to(device)
    logvar = torch.randn(len(dense), 4, dtype=torch.double, generator=generator).to(device)
    mu.requires_grad_()
    logvar.requires_grad_()
    weights = torch.rand(len(dense), dtype=torch.double, generator=generator).to(device)
    inputs = [anchors.anchors, mu, logvar]
    fused = torch.autograd.grad((anchors(rows, mu, logvar) * weights).sum(), inputs,
                                allow_unused=True)
    reference = torch.autograd.grad((anchors(dense.double(), mu, logvar) * weights).sum(),
                                    inputs, allow_unused=True)
    for got, expected in zip(fused, reference):
        assert (got is None) == (expected is None)
        if got is not None:
            assert torch.allclose(got, expected, atol=1e-12)

    def loss(table, mu, logvar):
        return _SparseAnchorLoss.apply(
            table, mu, logvar, rows.items, rows.user, rows.offsets, rows.counts, anchors.terms
        )

    assert torch.autograd.gradcheck(loss, (anchors.anchors.detach().requires_grad_(), mu, logvar))


def test_losses_and_gradients_match_the_dense_path_with_the_same_mask(ml100k, monkeypatch):
    sparse, dense = _pair(ml100k, anchor_weight=0.3, total_anneal_steps=10)
    users = torch.arange(1, 101)
    generator = torch.Generator().manual_seed(7)
    p = sparse.dropout_prob
    keep = (torch.rand(len(users), sparse.n_items, generator=generator) >= p).float() / (1 - p)
    sparse_rows = sparse.user_rows(users)

    def fixed_mask(values, prob, training=True):
        # The dense path masks the B x n_items row, the sparse path its nonzeros.
        mask = keep if values.dim() == 2 else sparse_rows.gather(keep)
        return values * mask

    monkeypatch.setattr(F, "dropout", fixed_mask)
    results = []
    for model in (sparse, dense):
        model.step.fill_(4)
        torch.manual_seed(3)  # the same eps for z = mu + sigma * eps
        losses = model.calculate_loss({model.USER_ID: users})
        sum(losses).backward()
        grads = {name: p.grad for name, p in model.named_parameters()}
        results.append(([loss.item() for loss in losses], grads))
    (sparse_losses, sparse_grads), (dense_losses, dense_grads) = results
    assert sparse_losses == pytest.approx(dense_losses, rel=1e-5)
    assert sparse_losses[2] > 0  # the anchor term is on
    for name, grad in dense_grads.items():
        assert torch.allclose(sparse_grads[name], grad, rtol=1e-4, atol=1e-6), name


def test_seeded_training_and_scores_match_the_dense_path(ml100k):
    """Without input masking both paths draw the same noise: the same seed gives the
    same losses step after step and the same full-ranking scores."""
    sparse, dense = _pair(ml100k, dropout_prob=0.0, anchor_weight=0.2)
    trajectories = []
    for model in (sparse, dense):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        torch.manual_seed(5)
        losses = seeded_steps(model, optimizer)
        model.eval()
        with torch.no_grad():
            scores = model.full_sort_predict({model.USER_ID: torch.arange(1, 301)})
        trajectories.append((losses, scores))
    (sparse_losses, sparse_scores), (dense_losses, dense_scores) = trajectories
    assert sparse_losses == pytest.approx(dense_losses, rel=1e-4)
    assert torch.allclose(sparse_scores, dense_scores, rtol=1e-3, atol=1e-4)


def test_first_layer_weight_keeps_its_shape_and_values(ml100k):
    """The item-major storage changes memory layout only: same shape and state dict."""
    sparse, dense = _pair(ml100k)
    first = sparse.encoder[0].weight
    assert first.shape == (sparse.hidden_dims[0], sparse.n_items)
    assert first.t().is_contiguous()
    for (name, a), (_, b) in zip(sparse.state_dict().items(), dense.state_dict().items()):
        assert torch.equal(a, b), name
