"""Fixes found by running RecBole's own test suite with the plugin imported
(``.ci/upstream-suite``): one test (at least) per fix, each failing without it."""
import sys
import types

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from recbole.data import create_dataset, data_preparation
from recbole.data.dataset import KnowledgeBasedDataset
from recbole.utils.enum_type import FeatureType

from recbole_anchor.compat import ray_tune_report

from conftest import FAST, make_config


# -- ray_tune_report ---------------------------------------------------------------


def test_objective_function_returns_its_results_outside_ray_tune(workdir):
    from recbole.quick_start import objective_function

    result = objective_function(
        config_dict={"model": "Pop", "dataset": "ml-100k", "epochs": 1, **FAST}, saved=False
    )
    assert result["model"] == "Pop"
    assert 0 < result["best_valid_score"] <= 1
    assert set(result["test_result"]) >= {"recall@10", "ndcg@10"}


def test_tune_report_reaches_a_running_tune_trial(monkeypatch):
    """Inside a trial (the real ray.tune loaded, its session on) reports still reach Ray."""
    from recbole.quick_start import quick_start

    reported = []
    real = types.ModuleType("ray.tune")
    real.is_session_enabled = lambda: True
    real.report = lambda **metrics: reported.append(metrics)
    monkeypatch.setitem(sys.modules, "ray.tune", real)
    quick_start.tune.report(recall=0.5)
    assert reported == [{"recall": 0.5}]
    real.is_session_enabled = lambda: False
    quick_start.tune.report(recall=0.25)
    assert reported == [{"recall": 0.5}] and not ray_tune_report.in_tune_session()


# -- pandas3_sequence_lengths --------------------------------------------------------

#: Pre-split sequential files: (user, target item, history).
BENCHMARK = {
    "train": [(1, 2, "1"), (1, 3, "1 2"), (1, 4, "1 2 3"), (2, 5, "4"), (3, 1, "5 6 7 8")],
    "valid": [(1, 5, "1 2 3 4"), (2, 6, "4 5")],
    "test": [(1, 6, "1 2 3 4 5"), (3, 2, "5 6 7 8 1")],
}


def test_sequential_benchmark_rows_keep_their_own_history_lengths(tmp_path):
    (tmp_path / "seqb").mkdir()
    for part, rows in BENCHMARK.items():
        lines = ["user_id:token\titem_id:token\titem_id_list:token_seq"]
        lines += [f"{user}\t{item}\t{history}" for user, item, history in rows]
        (tmp_path / "seqb" / f"seqb.{part}.inter").write_text("\n".join(lines) + "\n")
    config = make_config(
        "GRU4Rec", dataset="seqb", data_path=str(tmp_path), load_col=None,
        train_neg_sample_args=None, benchmark_filename=["train", "valid", "test"],
        alias_of_item_id=["item_id_list"],
    )
    built = create_dataset(config).build()
    for part, dataset in zip(BENCHMARK, built):
        lengths = dataset.inter_feat[dataset.item_list_length_field].numpy()
        assert lengths.tolist() == [len(h.split()) for _, _, h in BENCHMARK[part]]


# -- pandas3_seq_split_points --------------------------------------------------------


def _write_priced_items(folder):
    """``folder/priced/``: 6 users x 5 items, each item with 1-3 prices (float_seq)."""
    prices = {1: [1.0, 3.0], 2: [5.0], 3: [2.0, 9.0, 4.0], 4: [7.0], 5: [6.0, 8.0]}
    (folder / "priced").mkdir()
    inter = ["user_id:token\titem_id:token"]
    inter += [f"{u}\t{i}" for u in range(1, 7) for i in range(1, 6) if (u + i) % 3]
    (folder / "priced" / "priced.inter").write_text("\n".join(inter) + "\n")
    items = ["item_id:token\tprices:float_seq"]
    items += [f"{i}\t{' '.join(map(str, p))}" for i, p in prices.items()]
    (folder / "priced" / "priced.item").write_text("\n".join(items) + "\n")
    return prices


def _priced_config(folder, **settings):
    return make_config("BPR", dataset="priced", data_path=str(folder), load_col=None, **settings)


def _by_token(dataset, field):
    feat = dataset.item_feat
    tokens = dataset.id2token("item_id", feat["item_id"].to_numpy())
    return {int(t): value for t, value in zip(tokens, feat[field]) if t != "[PAD]"}


def test_float_seq_fields_normalize_over_all_their_values(tmp_path):
    prices = _write_priced_items(tmp_path)
    dataset = create_dataset(_priced_config(tmp_path, normalize_all=True))
    got = _by_token(dataset, "prices")
    for item, values in prices.items():
        np.testing.assert_allclose(got[item], (np.array(values) - 1.0) / 8.0, rtol=1e-6)


def test_float_seq_numerical_features_discretize_cell_by_cell(tmp_path):
    prices = _write_priced_items(tmp_path)
    config = _priced_config(
        tmp_path, numerical_features=["prices"],
        discretization={"prices": {"method": "ED", "bucket": 2}},
    )
    got = _by_token(create_dataset(config), "prices")
    for item, values in prices.items():
        ones, buckets = got[item]
        assert list(ones) == [1.0] * len(values)
        # bucket floor((v - 1) * 2 / (8 + 1e-9) + 1): 1 up to 5, 2 above
        assert list(buckets) == [1.0 if v <= 5.0 else 2.0 for v in values]


def test_sequence_fields_sharing_entity_ids_are_remapped_cell_by_cell():
    feat = pd.DataFrame({"ents": [np.array([2, 0]), np.array([1]), np.array([0, 1, 2])]})
    dataset = types.SimpleNamespace(
        field2id_token={}, field2token_id={},
        field2type={"ents": FeatureType.TOKEN_SEQ}, field2feats=lambda field: [feat],
    )
    idmap = np.array([10, 11, 12])
    KnowledgeBasedDataset._reset_ent_remapID(dataset, "ents", idmap, ["a"], {"a": 0})
    assert [list(cell) for cell in feat["ents"]] == [[12, 10], [11], [10, 11, 12]]


# -- scipy_dok_update ----------------------------------------------------------------


def test_lightgcn_adjacency_is_the_normalized_bipartite_graph(tmp_path):
    from tiny_dataset import write_tiny_dataset
    from recbole.model.general_recommender import LightGCN

    write_tiny_dataset(tmp_path)
    config = make_config("LightGCN", dataset="tiny", data_path=str(tmp_path), epochs=1)
    train, _, _ = data_preparation(config, create_dataset(config))
    adjacency = LightGCN(config, train._dataset).norm_adj_matrix.to_dense().numpy()

    seen = train._dataset.inter_matrix(form="csr").astype(np.float64)
    seen.data[:] = 1.0
    graph = sp.bmat([[None, seen], [seen.T, None]]).toarray()
    scale = 1 / np.sqrt(graph.sum(axis=1) + 1e-7)
    np.testing.assert_allclose(adjacency, graph * scale[:, None] * scale[None, :], atol=1e-6)
    assert (adjacency != 0).sum() == 2 * seen.nnz


@pytest.mark.parametrize("entries", [{}, {(0, 1): 2.0, (2, 0): 1.0}])
def test_dok_update_sets_exactly_the_given_entries(entries):
    matrix = sp.dok_matrix((3, 2), dtype=np.float32)
    matrix._update(entries)
    expected = np.zeros((3, 2), dtype=np.float32)
    for (row, col), value in entries.items():
        expected[row, col] = value
    np.testing.assert_array_equal(matrix.toarray(), expected)
