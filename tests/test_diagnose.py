"""Latent-geometry diagnostics: the W2 closed form, collapse statistics, the model
adapters, and the anchor term's drift reduction on data with planted user clusters."""
import glob
import json
import math
import sys

import numpy as np
import pytest
import scipy.linalg
import torch
from recbole.data import create_dataset, data_preparation
from recbole.model.general_recommender.multivae import MultiVAE
from recbole.model.general_recommender.recvae import RecVAE

import recbole_anchor  # noqa: F401  (applies the RecBole workarounds)
from recbole_anchor.config import Config
from recbole_anchor.diagnose import collapse, drift, geometry
from recbole_anchor.diagnose.__main__ import main
from recbole_anchor.diagnose.posterior import posterior_of
from recbole_anchor.errors import DiagnosticsError
from recbole_anchor.evaluator.activity import ACTIVITY_GROUPS, activity_masks
from recbole_anchor.quick_start import run_recbole_anchor

QUIET = {"show_progress": False, "state": "ERROR", "checkpoint_dir": "saved"}


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    """RecBole's Config reads sys.argv; keep pytest's own flags out of it."""
    monkeypatch.setattr(sys, "argv", ["pytest"])


# ----------------------------------------------------------------------------- W2
@pytest.mark.parametrize("m1, s1, m2, s2", [(0.0, 1.0, 0.0, 1.0), (0.3, 0.5, -1.2, 2.0), (2.0, 0.1, 1.0, 0.1)])
def test_w2_closed_form_equals_sorted_samples_in_1d(m1, s1, m2, s2):
    """In 1-D the optimal coupling is monotone: W2^2 is the mean squared difference
    of sorted samples (quantile functions); the closed form must match it."""
    rng = np.random.default_rng(0)
    n = 400_000
    x = np.sort(rng.normal(m1, s1, n))
    y = np.sort(rng.normal(m2, s2, n))
    estimate = np.mean((x - y) ** 2)
    closed = geometry.w2_squared(
        torch.tensor([[m1]]), torch.tensor([[2 * math.log(s1)]]),
        torch.tensor([[m2]]), torch.tensor([[2 * math.log(s2)]]),
    ).item()
    assert closed == pytest.approx((m1 - m2) ** 2 + (s1 - s2) ** 2, rel=1e-5)
    assert estimate == pytest.approx(closed, rel=0.02, abs=2e-3)


def test_w2_diagonal_equals_general_gaussian_formula():
    """For diagonal covariances the Bures formula
    ||m1-m2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2) reduces to the closed form,
    and W2 is the Euclidean distance of the stacked (mu, sigma) vectors."""
    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(2, 6, generator=generator, dtype=torch.float64)
    logvar = torch.randn(2, 6, generator=generator, dtype=torch.float64)
    s1, s2 = np.diag(logvar[0].exp().numpy()), np.diag(logvar[1].exp().numpy())
    root = scipy.linalg.sqrtm(s1)
    bures = np.sum((mu[0] - mu[1]).numpy() ** 2) + np.trace(
        s1 + s2 - 2 * np.real(scipy.linalg.sqrtm(root @ s2 @ root))
    )
    closed = geometry.w2_squared(mu[0], logvar[0], mu[1], logvar[1]).item()
    assert closed == pytest.approx(bures, rel=1e-9)
    stacked = geometry.w2_embedding(mu, logvar)
    assert torch.dist(stacked[0], stacked[1]).item() ** 2 == pytest.approx(closed, rel=1e-9)


def test_jaccard_of_item_sets():
    import scipy.sparse as sp

    rows = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 1, 0, 0]], dtype=np.float32))
    similarity = geometry.jaccard_similarity(rows, np.array([0, 0]), np.array([1, 2]))
    assert similarity.tolist() == pytest.approx([1 / 3, 1.0])


def test_sampled_pairs_are_distinct_users():
    u, v = geometry.sample_pairs(5, 1000, seed=1)
    assert (u != v).all() and u.max() < 5 and v.max() < 5


# ------------------------------------------------------------------------ collapse
def test_kl_per_dim_active_units_and_variance_by_hand():
    """Two users, three dimensions: dim 0 constant mu with sigma^2 = 1/4, dim 1 mu = +-1
    (Var_x = 1, active), dim 2 mu in {0.05, 0.15} (Var_x = 0.0025, inactive)."""
    mu = torch.tensor([[0.0, 1.0, 0.05], [0.0, -1.0, 0.15]], dtype=torch.float64)
    logvar = torch.tensor([[math.log(0.25), 0.0, 0.0]] * 2, dtype=torch.float64)
    expected_kl = [
        0.5 * (0.25 - 1 - math.log(0.25)),  # 0.318147...
        0.5 * (1 + 1 - 1),
        0.5 * (0.05**2 + 0.15**2) / 2,
    ]
    assert collapse.kl_per_dim(mu, logvar).tolist() == pytest.approx(expected_kl)
    assert collapse.mu_variance(mu).tolist() == pytest.approx([0.0, 1.0, 0.0025])
    assert collapse.active_units(mu) == 1
    report = collapse.collapse_report(mu, logvar)
    assert report["mean_kl"] == pytest.approx(sum(expected_kl))
    assert report["total_posterior_variance"] == pytest.approx(2.25)
    e_bar = torch.tensor([[0.0, 1.0, 0.05], [3.0, -1.0, 0.15]], dtype=torch.float64)
    assert collapse.anchor_distance(mu, e_bar).tolist() == pytest.approx([0.0, 3.0])


def test_activity_groups_are_the_papers_and_the_evaluations():
    """One grouping, the paper's table (5-10, 11-50, 51-100, >100), bounds included;
    fewer than 5 interactions is in no group (only in "all")."""
    assert [label for label, _, _ in ACTIVITY_GROUPS] == ["5-10", "11-50", "51-100", ">100"]
    groups = activity_masks([3, 5, 10, 11, 50, 51, 100, 101, 4000])
    assert {name: mask.nonzero()[0].tolist() for name, mask in groups.items()} == {
        "5-10": [1, 2], "11-50": [3, 4], "51-100": [5, 6], ">100": [7, 8],
    }
    assert list(activity_masks([12, 30])) == ["11-50"]  # empty groups left out


# --------------------------------------------------------------------------- drift
def test_drift_variance_and_neighbour_overlap_by_hand():
    draws = torch.tensor([[[0.0, 1.0]], [[2.0, 1.0]]])  # R=2, N=1, d=2
    assert drift.drift_variance(draws).tolist() == [1.0]
    overlap = drift.neighbour_overlap(torch.tensor([[1, 2], [1, 2]]), torch.tensor([[2, 3], [2, 1]]))
    assert overlap.tolist() == pytest.approx([1 / 3, 1.0])


def test_nearest_neighbours_by_w2():
    mu = torch.tensor([[0.0], [1.0], [5.0], [5.5]])
    logvar = torch.zeros(4, 1)
    assert drift.nearest_neighbours(mu, logvar, 1, batch_size=3).squeeze(1).tolist() == [1, 0, 3, 2]


@pytest.mark.parametrize("latent_dim, probes, tolerance", [(1, 1, 1e-9), (3, 200, 0.1)])
def test_curvature_matches_exact_gauss_newton_trace(latent_dim, probes, tolerance):
    """Hutchinson's estimate of tr(J^T n (diag pi - pi pi^T) J)/d + beta against the
    exact Jacobian of a small decoder (exact for d = 1, where every probe is +-1)."""
    torch.manual_seed(0)
    decoder = torch.nn.Sequential(
        torch.nn.Linear(latent_dim, 8), torch.nn.Tanh(), torch.nn.Linear(8, 12)
    ).double()

    class Posterior:
        def decode(self, z):
            return decoder(z)

        def prior_curvature(self, mu, rows):
            return 0.2

    mu = torch.randn(3, latent_dim, dtype=torch.float64)
    rows = (torch.rand(3, 12, dtype=torch.float64) < 0.5).to(torch.float64)
    estimate = drift.curvature(Posterior(), mu, rows, probes=probes, seed=0)
    for u in range(3):
        jacobian = torch.autograd.functional.jacobian(decoder, mu[u])
        pi = torch.softmax(decoder(mu[u]), dim=0)
        hessian = rows[u].sum() * (torch.diag(pi) - torch.outer(pi, pi))
        exact = torch.trace(jacobian.T @ hessian @ jacobian).item() / latent_dim + 0.2
        assert estimate[u].item() == pytest.approx(exact, rel=tolerance)


def test_predicted_tau2():
    """tau^2 = (L / (L + 2 lambda_A))^2; 1 without anchors."""
    assert drift.predicted_tau2(torch.tensor([1.0, 3.0]), 0.5).tolist() == pytest.approx([0.25, 0.5625])
    assert drift.predicted_tau2(torch.tensor([2.0]), 0.0).item() == 1.0


# ---------------------------------------------------------------- planted clusters
def _write_planted(folder, n_users=400, n_items=200, clusters=4, seed=0):
    """Users of 4 planted clusters, each with 50 favourite items: 85% of each user's
    8-40 items from the own cluster's favourites, the rest at random."""
    rng = np.random.default_rng(seed)
    block = n_items // clusters
    lines = ["user_id:token\titem_id:token"]
    for user in range(n_users):
        cluster = user % clusters
        size = rng.integers(8, 41)
        own = rng.choice(np.arange(cluster * block, (cluster + 1) * block), size=int(0.85 * size), replace=False)
        other = rng.choice(n_items, size=size - len(own), replace=False)
        for item in sorted(set(own.tolist()) | set(other.tolist())):
            lines.append(f"u{user}\ti{item}")
    (folder / "planted").mkdir(parents=True, exist_ok=True)
    (folder / "planted" / "planted.inter").write_text("\n".join(lines) + "\n")


def _planted_settings(data_path, **overrides):
    return {
        **QUIET,
        "data_path": str(data_path),
        "load_col": {"inter": ["user_id", "item_id"]},
        "user_inter_num_interval": "[0,inf)",
        "item_inter_num_interval": "[0,inf)",
        "seed": 7,
        **overrides,
    }


def _planted_config(data_path, model="AnchorMultVAE", **overrides):
    return Config(
        model=model, dataset="planted", config_dict=_planted_settings(data_path, **overrides), cmd_args=[]
    )


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    _write_planted(folder)
    return folder


def test_recbole_vae_adapters_give_the_models_posteriors(planted):
    """MultiVAE: the two halves of the encoder output; RecVAE: its encoder's (mu,
    logvar); unmasked they equal the models' own eval outputs, masked they vary."""
    for model_class, extra in ((MultiVAE, {"latent_dimension": 16, "mlp_hidden_size": [32]}),
                               (RecVAE, {"latent_dimension": 8, "hidden_dimension": 16})):
        config = _planted_config(planted, model_class.__name__, **extra)
        dataset = create_dataset(config)
        train_data, _, _ = data_preparation(config, dataset)
        model = model_class(config, train_data._dataset)
        posterior = posterior_of(model)
        rows = model.get_rating_matrix(torch.arange(1, 21))
        with torch.no_grad():
            mu, logvar = posterior.encode(rows, mask=False)
            if model_class is MultiVAE:
                _, own_mu, own_logvar = model(rows)
            else:
                own_mu, own_logvar = model.encoder(rows, model.dropout_prob)
            masked_mu, _ = posterior.encode(rows, mask=True)
        assert posterior.family == model_class.__name__ and posterior.dropout_prob == 0.5
        assert torch.equal(mu, own_mu) and torch.equal(logvar, own_logvar)
        assert not torch.allclose(masked_mu, mu)
        assert not model.encoder.training


def test_unsupported_model_is_a_one_line_error():
    with pytest.raises(DiagnosticsError, match="no Gaussian user posterior"):
        posterior_of(torch.nn.Linear(2, 2))


def test_missing_matplotlib_is_a_one_line_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["--checkpoint=nowhere.pth"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("diagnose: error:") and "matplotlib" in error and "\n" not in error


def test_anchor_term_lowers_masking_drift_on_planted_clusters(planted, tmp_path, monkeypatch):
    """Directional: a model trained with a large anchor_weight drifts less under
    input masking than the same model without anchors; end to end through the
    command (train both, diagnose with --compare-checkpoint, read the JSON)."""
    monkeypatch.chdir(tmp_path)
    tiny = {
        "mlp_hidden_size": [64], "latent_dimension": 16, "epochs": 8, "train_batch_size": 100,
        "learning_rate": 0.01, "total_anneal_steps": 0, "eval_step": 8,
    }
    paths = {}
    for name, weight in (("anchored", 5.0), ("plain", 0.0)):
        settings = _planted_settings(planted, anchor_weight=weight, checkpoint_dir=f"saved/{name}", **tiny)
        run_recbole_anchor("AnchorMultVAE", "planted", config_dict=settings, cmd_args=[])
        (paths[name],) = [p for p in glob.glob(f"saved/{name}/*.pth") if not p.endswith("-last.pth")]
    status = main([
        f"--checkpoint={paths['anchored']}", f"--compare-checkpoint={paths['plain']}",
        "--output_dir=out", "--users=300", "--pairs=5000", "--mask_draws=6", "--knn=10", "--no-tsne",
    ])
    assert status == 0
    report = json.loads((tmp_path / "out" / "diagnostics.json").read_text())
    anchored, plain = report["model"]["groups"]["all"], report["compare"]["groups"]["all"]
    assert anchored["drift"]["drift_variance"] < plain["drift"]["drift_variance"]
    assert report["comparison"]["all"]["drift_variance_ratio"] < 0.8
    assert report["model"]["anchor_weight"] == 5.0 and report["compare"]["anchor_weight"] == 0.0
    assert 0 < anchored["drift"]["predicted_tau2"] < 1
    assert "anchor_distance" in anchored["collapse"] and "anchor_distance" not in plain["collapse"]
    assert {"all", "5-10", "11-50"} <= set(report["model"]["groups"])
    assert sorted(report["pictures"]) == sorted(
        ["latent_map_pca.png", "latent_map_pca_compare.png", "w2_vs_input_distance.png",
         "w2_vs_input_distance_compare.png", "drift.png", "kl_per_dim.png"]
    )


def _composite_prior_curvature_by_hand(model, rows, mu):
    r"""beta(x) * mean_j -d^2/dz_j^2 log p_j(z_j) at z = mu for RecVAE's per-dimension
    mixture p_j = sum_k w_k N(m_k, v_k) (standard, previous posterior, wide): with
    responsibilities r_k and a_k = (z - m_k) / v_k,
    -d^2 log p = sum_k r_k / v_k - (sum_k r_k a_k^2 - (sum_k r_k a_k)^2)."""
    old_mu, old_logvar = model.prior.encoder_old(rows, 0)
    means = torch.stack([torch.zeros_like(mu), old_mu, torch.zeros_like(mu)])
    variances = torch.stack([torch.ones_like(mu), old_logvar.exp(), torch.full_like(mu, math.exp(10))])
    weights = torch.tensor(model.mixture_weights, dtype=mu.dtype).view(3, 1, 1)
    log_density = torch.log(weights) - 0.5 * (torch.log(2 * math.pi * variances) + (mu - means) ** 2 / variances)
    r = torch.softmax(log_density, dim=0)
    a = (mu - means) / variances
    second = (r / variances).sum(0) - ((r * a**2).sum(0) - (r * a).sum(0) ** 2)
    return model.gamma * rows.sum(dim=1) * second.mean(dim=1)


def test_anchorrecvae_checkpoint_gives_its_anchor_diagnostics(planted, tmp_path, monkeypatch):
    """AnchorRecVAE is read through its anchor component as AnchorMultVAE is: after a
    few training steps (mid warm-up), the command's lambda_A, centroid distances and
    predicted tau^2 equal those computed by hand from the checkpoint's step, anchor
    table E, encoder posterior and decoder (linear: J = W exactly)."""
    from recbole_anchor import load_data_and_model

    monkeypatch.chdir(tmp_path)
    warmup, weight = 100, 2.0
    settings = _planted_settings(
        planted, hidden_dimension=32, latent_dimension=8, epochs=2, train_batch_size=100,
        anchor_weight=weight, anchor_warmup_steps=warmup, eval_step=2,
    )
    run_recbole_anchor("AnchorRecVAE", "planted", config_dict=settings, cmd_args=[])
    (path,) = [p for p in glob.glob("saved/*.pth") if not p.endswith("-last.pth")]
    assert main([f"--checkpoint={path}", "--output_dir=out", "--no-plots", "--users=1000",
                 "--pairs=2000", "--mask_draws=2", "--knn=5", "--probes=400"]) == 0
    report = json.loads((tmp_path / "out" / "diagnostics.json").read_text())["model"]

    _, model, _, train_data, _, _ = load_data_and_model(path)
    model.eval()
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    step = int(state["step"])
    assert 0 < step < warmup  # trained a few encoder steps, inside the warm-up
    lambda_now = weight * step / warmup
    assert report["model"] == "AnchorRecVAE" and report["posterior_family"] == "RecVAE"
    assert report["anchor_weight"] == pytest.approx(lambda_now, rel=1e-12)
    assert report["gamma"] == model.gamma and report["beta"] is None

    matrix = train_data._dataset.inter_matrix(form="csr")
    users = np.flatnonzero(np.diff(matrix.indptr) > 0)  # --users above their number: all
    rows = torch.from_numpy((matrix[users].toarray() > 0).astype(np.float32))
    with torch.no_grad():
        mu, _ = model.encoder(rows, 0.0)
        anchors = state["anchor.anchors"]
        e_bar = rows @ anchors / rows.sum(dim=1, keepdim=True)
        distance = (mu - e_bar).norm(dim=1).double()
        pi = torch.softmax(model.decoder(mu), dim=1)
        w = model.decoder.weight  # n_items x d: the decoder's Jacobian
        quadratic = torch.einsum("ui,ij->uj", pi, w.pow(2)).sum(1) - (pi @ w).pow(2).sum(1)
        likelihood = rows.sum(dim=1) * quadratic / mu.shape[1]
        curvature = likelihood + _composite_prior_curvature_by_hand(model, rows, mu)
        tau2 = (curvature / (curvature + 2 * lambda_now)).pow(2)
    counts = rows.sum(dim=1).numpy()
    groups = {"all": np.ones(len(users), dtype=bool)}
    for label, low, high in ACTIVITY_GROUPS:
        members = (counts >= low) & (counts <= (high or np.inf))
        if members.any():
            groups[label] = members
    assert set(report["groups"]) == set(groups)
    for label, members in groups.items():
        group = report["groups"][label]
        index = torch.from_numpy(np.flatnonzero(members))
        assert group["users"] == int(members.sum())
        measured = group["collapse"]["anchor_distance"]
        assert measured["mean"] == pytest.approx(distance[index].mean().item(), rel=1e-5)
        for q in ("0.05", "0.5", "0.95"):
            expected = np.quantile(distance[index].numpy(), float(q))
            assert measured[q] == pytest.approx(expected, rel=1e-5)
        assert group["drift"]["predicted_tau2"] == pytest.approx(tau2[index].mean().item(), rel=0.005)
        assert group["drift"]["curvature_L_median"] == pytest.approx(
            curvature[index].median().item(), rel=0.01
        )  # Hutchinson with 400 probes against the exact trace
    assert report["groups"]["all"]["drift"]["predicted_tau2"] < 0.999  # the anchors shrink
