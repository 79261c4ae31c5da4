"""Converters from raw public files to atomic files, on fixtures in each raw format,
and the ML-20M preset's filter applied to a converted fixture."""
import numpy as np
import pytest

from recbole_anchor.data.convert import convert, main
from recbole_anchor.errors import MalformedDatasetError


def _read(path):
    with open(path, encoding="utf-8") as handle:
        return [line.rstrip("\n").split("\t") for line in handle]


def test_movielens_csv(tmp_path):
    raw = tmp_path / "ratings.csv"
    raw.write_text("userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,29,4.0,1112484676\n")
    target, count = convert("movielens", [str(raw)], str(tmp_path / "out"), "ml-20m", progress=False)
    assert count == 2 and target.endswith("out/ml-20m/ml-20m.inter")
    assert _read(target) == [
        ["user_id:token", "item_id:token", "rating:float", "timestamp:float"],
        ["1", "2", "3.5", "1112486027"],
        ["1", "29", "4.0", "1112484676"],
    ]


def test_movielens_dat(tmp_path):
    raw = tmp_path / "ratings.dat"
    raw.write_text("1::1193::5::978300760\n2::661::3::978302109\n")
    target, _ = convert("movielens", [str(raw)], str(tmp_path), "ml-1m", progress=False)
    assert _read(target)[1:] == [["1", "1193", "5", "978300760"], ["2", "661", "3", "978302109"]]


def test_netflix_training_set_folder_and_combined_files(tmp_path):
    folder = tmp_path / "training_set"
    folder.mkdir()
    (folder / "mv_0000001.txt").write_text("1:\n1488844,3,2005-09-06\n822109,5,2005-05-13\n")
    (folder / "mv_0000002.txt").write_text("2:\n2059652,4,2005-09-05\n")
    target, count = convert("netflix", [str(folder)], str(tmp_path / "a"), progress=False)
    rows = _read(target)
    assert count == 3 and rows[0][:2] == ["user_id:token", "item_id:token"]
    assert rows[1] == ["1488844", "1", "3", "1125964800"]  # 2005-09-06 00:00 UTC
    assert [row[:3] for row in rows[2:]] == [["822109", "1", "5"], ["2059652", "2", "4"]]
    combined = tmp_path / "combined_data_1.txt"
    combined.write_text("1:\n1488844,3,2005-09-06\n822109,5,2005-05-13\n2:\n2059652,4,2005-09-05\n")
    target2, _ = convert("netflix", [str(combined)], str(tmp_path / "b"), progress=False)
    assert _read(target2) == rows


def test_msd_triplets(tmp_path):
    raw = tmp_path / "train_triplets.txt"
    raw.write_text("b80344d063b5ccb3\tSOAKIMP12A8C130995\t1\nb80344d063b5ccb3\tSOBBMDR12A8C13253B\t2\n")
    target, _ = convert("msd", [str(raw)], str(tmp_path), progress=False)
    assert _read(target) == [
        ["user_id:token", "item_id:token", "count:float"],
        ["b80344d063b5ccb3", "SOAKIMP12A8C130995", "1"],
        ["b80344d063b5ccb3", "SOBBMDR12A8C13253B", "2"],
    ]


@pytest.mark.parametrize(
    "kind, name, text, message",
    [
        ("movielens", "ratings.dat", "1::2::5::978300760\n1::2::5\n", r"ratings.dat:2: expected 4 fields"),
        ("movielens", "ratings.csv", "userId,movieId,rating,timestamp\n1,2,x,3\n", r"ratings.csv:2: rating 'x'"),
        ("netflix", "mv_0000001.txt", "1488844,3,2005-09-06\n", r"mv_0000001.txt:1: rating before any"),
        ("netflix", "mv_0000001.txt", "1:\n1488844,3,2005-13-06\n", r"mv_0000001.txt:2: date"),
        ("msd", "train_triplets.txt", "u\ts\t1\nu s 1\n", r"train_triplets.txt:2: expected 3 tab"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, kind, name, text, message):
    raw = tmp_path / name
    raw.write_text(text)
    with pytest.raises(MalformedDatasetError, match=message):
        convert(kind, [str(raw)], str(tmp_path / "out"), "x", progress=False)
    assert not (tmp_path / "out" / "x" / "x.inter").exists()


def test_command_line_reports_one_line(tmp_path, capsys):
    raw = tmp_path / "ratings.dat"
    raw.write_text("1::2::5\n")
    assert main(["movielens", str(raw), "--output", str(tmp_path), "--name", "t", "--no-progress"]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0


def test_ml20m_preset_filter_counts(recbole_dir):
    """ratings >= 4 kept, then users with >= 5 of them: the counts the filter implies."""
    from recbole_anchor import Config
    from recbole_anchor.data.loading import create_dataset

    rng = np.random.default_rng(0)
    n = 6000
    users = rng.integers(1, 301, n)
    items = rng.integers(1, 81, n)
    ratings = rng.choice([0.5, 1.0, 2.0, 3.0, 3.5, 4.0, 4.5, 5.0], n)
    pairs = {}
    for u, i, r in zip(users, items, ratings):
        pairs.setdefault((u, i), r)  # one rating per (user, movie), as in MovieLens
    lines = ["userId,movieId,rating,timestamp"] + [
        f"{u},{i},{r},{1000 + k}" for k, ((u, i), r) in enumerate(pairs.items())
    ]
    raw = recbole_dir / "ratings.csv"
    raw.write_text("\n".join(lines) + "\n")
    convert("movielens", [str(raw)], str(recbole_dir / "data"), "ml-20m", progress=False)

    positives = [(u, i) for (u, i), r in pairs.items() if r >= 4]
    per_user = {}
    for u, i in positives:
        per_user.setdefault(u, set()).add(i)
    kept = {u: s for u, s in per_user.items() if len(s) >= 5}

    config = Config(model="AnchorMultVAE", dataset="ml-20m", cmd_args=[], config_dict={
        "data_path": str(recbole_dir / "data"),
        # the preset's 10k/10k held-out users do not fit a fixture
        "eval_args": {"split": {"SG": [0.8, 10, 10]}, "group_by": "user", "order": "RO", "mode": "full"},
    })
    assert config["val_interval"] == {"rating": "[4,inf)"}
    assert config["valid_metric"] == "NDCG@100"
    dataset = create_dataset(config)
    assert dataset.user_num - 1 == len(kept)  # - RecBole's padding user
    from recbole_anchor.data.strong_generalization import TRAIN

    users_now = dataset.inter_feat["user_id"].to_numpy()
    items_now = dataset.inter_feat["item_id"].to_numpy()
    train_items = set(items_now[dataset.role == TRAIN])
    # training users keep all their positives; held-out users those on training items
    expected = sum(
        len(s) if dataset.field2token_id["user_id"][str(u)] in set(users_now[dataset.role == TRAIN])
        else len({i for i in s if dataset.field2token_id["item_id"].get(str(i)) in train_items})
        for u, s in kept.items()
    )
    assert len(users_now) == expected
