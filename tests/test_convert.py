"""Converters from raw public files to atomic files, on fixtures in each raw format;
MSD filtered once as Liang et al. do; and the ML-20M, Netflix and MSD presets applied
to fixtures in the exact column layout of RecBole's downloadable atomic files."""
import collections

import numpy as np
import pytest

from recbole_anchor.config import Config
from recbole_anchor.data.convert import convert, convert_command, main
from recbole_anchor.data.loading import create_dataset
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


def msd_triplets():
    """Taste-profile triplets where Liang's filter applied once and RecBole's filter
    repeated until stable disagree. 210 users U listen to songs A01..A20; song B has
    exactly 200 listeners: U000..U179, 10 users W (who also listen to A01..A19, so 20
    songs with B) and 10 users L (who listen to B and A01..A05 only); C01..C05 have 3
    listeners each. Once: C dropped, then L (6 songs < 20): 220 users x 21 songs, B
    left with 190 listeners. Until stable: B goes (190 < 200), then W (19 songs)."""
    rows = []
    for u in range(210):
        rows += [(f"U{u:03d}", f"A{s:02d}") for s in range(1, 21)]
        if u < 180:
            rows.append((f"U{u:03d}", "B"))
    for w in range(10):
        rows += [(f"W{w}", f"A{s:02d}") for s in range(1, 20)] + [(f"W{w}", "B")]
    for l in range(10):
        rows += [(f"L{l}", f"A{s:02d}") for s in range(1, 6)] + [(f"L{l}", "B")]
    for c in range(1, 6):
        rows += [(f"U{u:03d}", f"C{c:02d}") for u in range(3)]
    return rows


def until_stable(rows, min_item_users, min_user_items):
    """RecBole's interval filter: both filters repeated until nothing changes."""
    while True:
        items = collections.Counter(item for _, item in rows)
        users = collections.Counter(user for user, _ in rows)
        kept = [(u, i) for u, i in rows if items[i] >= min_item_users and users[u] >= min_user_items]
        if len(kept) == len(rows):
            return kept
        rows = kept


def _shape(rows):
    return len({u for u, _ in rows}), len({i for _, i in rows}), len(rows)


def test_msd_filtered_once_as_liang_then_the_preset_keeps_every_row(recbole_dir):
    rows = msd_triplets()
    raw = recbole_dir / "train_triplets.txt"
    raw.write_text("".join(f"{u}\t{s}\t{1 + k % 7}\n" for k, (u, s) in enumerate(rows)))
    target, count = convert("msd", [str(raw)], str(recbole_dir / "data"), progress=False)
    written = [(u, s) for u, s, _ in _read(target)[1:]]
    assert _read(target)[0] == ["user_id:token", "item_id:token", "count:float"]
    assert _shape(written) == (220, 21, 4580) and count == 4580
    assert {s for _, s in written} == {f"A{s:02d}" for s in range(1, 21)} | {"B"}
    assert _shape(until_stable(rows, 200, 20)) == (210, 20, 4200)  # what iterating gives

    eval_args = {"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": "user", "order": "RO", "mode": "full"}
    preset = create_dataset(Config("AnchorMultVAE", "msd", config_dict={
        "data_path": str(recbole_dir / "data"), "eval_args": eval_args, "state": "ERROR"}, cmd_args=[]))
    assert (preset.user_num - 1, preset.item_num - 1, preset.inter_num) == (220, 21, 4580)
    # RecBole's own filters with Liang's thresholds iterate: the counts the preset avoids
    iterated = create_dataset(Config("AnchorMultVAE", "msd", config_dict={
        "data_path": str(recbole_dir / "data"), "eval_args": eval_args, "state": "ERROR",
        "item_inter_num_interval": "[200,inf)", "user_inter_num_interval": "[20,inf)"}, cmd_args=[]))
    assert (iterated.user_num - 1, iterated.item_num - 1, iterated.inter_num) == (210, 20, 4200)


#: dataset -> (header of RecBole's downloadable .inter file, rating scale). Headers from
#: RecBole's conversion scripts (RUCAIBox/RecSysDatasets, conversion_tools/src/
#: extended_dataset.py: ML20MDataset, NETFLIXDataset).
RECBOLE_FILES = {
    "ml-20m": (["user_id:token", "item_id:token", "rating:float", "timestamp:float"],
               [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]),
    "netflix": (["item_id:token", "user_id:token", "rating:float", "timestamp:float"],
                [1, 2, 3, 4, 5]),
}


def liang_counts(ratings, threshold_included=False):
    """(users, items, interactions) after Liang's filter: rating > 3.5, then users
    with >= 5 of those (``threshold_included``: rating >= 3.5 instead)."""
    positive = [(u, i) for (u, i), r in ratings.items() if (r >= 3.5 if threshold_included else r > 3.5)]
    per_user = collections.Counter(u for u, _ in positive)
    return _shape([(u, i) for u, i in positive if per_user[u] >= 5])


@pytest.mark.parametrize("dataset", sorted(RECBOLE_FILES))
def test_preset_gives_liangs_filter_on_recboles_file_layout(recbole_dir, dataset):
    header, scale = RECBOLE_FILES[dataset]
    rng = np.random.default_rng(1)
    ratings = {}
    for u, i, r in zip(rng.integers(1, 301, 7000), rng.integers(1, 81, 7000), rng.choice(scale, 7000)):
        ratings.setdefault((int(u), int(i)), r)  # one rating per (user, movie)
    folder = recbole_dir / "data" / dataset
    folder.mkdir(parents=True)
    lines = ["\t".join(header)]
    for k, ((u, i), r) in enumerate(ratings.items()):
        value = {"user_id": u, "item_id": i, "rating": r, "timestamp": 1_100_000_000 + k}
        lines.append("\t".join(str(value[column.split(":")[0]]) for column in header))
    (folder / f"{dataset}.inter").write_text("\n".join(lines) + "\n")
    if dataset == "ml-20m":  # RecBole's ml-20m also ships movie features, unread by the preset
        (folder / "ml-20m.item").write_text(
            "item_id:token\tmovie_name:token_seq\trelease_year:token\ttype:token_seq\n"
            "1\tToy Story\t1995\tAdventure Animation\n")

    config = Config("AnchorMultVAE", dataset, cmd_args=[], config_dict={
        "data_path": str(recbole_dir / "data"), "state": "ERROR",
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "group_by": "user", "order": "RO", "mode": "full"},
    })
    assert config["val_interval"] == {"rating": "(3.5,inf)"}
    filtered = create_dataset(config)
    expected = liang_counts(ratings)
    assert (filtered.user_num - 1, filtered.item_num - 1, filtered.inter_num) == expected
    if dataset == "ml-20m":  # the half-star 3.5 is on the scale: ">= 3.5" would differ
        assert liang_counts(ratings, threshold_included=True) != expected


@pytest.mark.parametrize(
    "dataset, command",
    [
        ("ml-20m", "python -m recbole_anchor.data.convert movielens ml-20m/ratings.csv --output data --name ml-20m"),
        ("netflix", "python -m recbole_anchor.data.convert netflix training_set/ --output data"),
        ("msd", "python -m recbole_anchor.data.convert msd train_triplets.txt --output data"),
        ("amazon-books", None),
    ],
)
def test_convert_command_names_the_subcommand_and_raw_file(dataset, command):
    assert convert_command(dataset, "data") == command


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
    """ratings > 3.5 kept, then users with >= 5 of them, under the SG split."""
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

    positives = [(u, i) for (u, i), r in pairs.items() if r > 3.5]
    per_user = {}
    for u, i in positives:
        per_user.setdefault(u, set()).add(i)
    kept = {u: s for u, s in per_user.items() if len(s) >= 5}

    config = Config(model="AnchorMultVAE", dataset="ml-20m", cmd_args=[], config_dict={
        "data_path": str(recbole_dir / "data"),
        # the preset's 10k/10k held-out users do not fit a fixture
        "eval_args": {"split": {"SG": [0.8, 10, 10]}, "group_by": "user", "order": "RO", "mode": "full"},
    })
    assert config["val_interval"] == {"rating": "(3.5,inf)"}
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


def test_module_runs_without_warnings(tmp_path):
    """``python -m recbole_anchor.data.convert``: importing the package must not load
    the converter first (runpy would warn on every run)."""
    import os
    import subprocess
    import sys

    raw = tmp_path / "ratings.dat"
    raw.write_text("1::2::5::978300760\n")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-m", "recbole_anchor.data.convert",
         "movielens", str(raw), "--output", str(tmp_path), "--name", "t", "--no-progress"],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")},
    )
    assert result.returncode == 0 and result.stderr == "", result.stderr
