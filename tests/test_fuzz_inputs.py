"""Property-based tests: malformed atomic files and config values either load or fail
with a one-line RecBoleAnchorError; never another exception, and never a change to
the dataset folder."""
import hashlib
import os
import pathlib
import tempfile

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recbole_anchor.config import Config
from recbole_anchor.data.atomic_files import check_dataset_files
from recbole_anchor.data.loading import create_dataset, data_preparation
from recbole_anchor.errors import RecBoleAnchorError
from recbole_anchor.quick_start import run_recbole_anchor

from tiny_dataset import TINY_MODEL, write_tiny_dataset

FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def snapshot(folder):
    """Every file under ``folder`` with its content hash, size and modification time."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            info = os.stat(path)
            with open(path, "rb") as handle:
                digest = hashlib.sha256(handle.read()).hexdigest()
            files[os.path.relpath(path, folder)] = (digest, info.st_size, info.st_mtime_ns)
    return files


def assert_one_line(err):
    message = str(err)
    assert message and "\n" not in message and "Traceback" not in message, message


# ------------------------------------------------------------------ atomic files
GOOD_COLUMNS = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
BAD_COLUMNS = ["user_id:tokn", "item_id", ":token", "rating:float:x", "user_id:token", ""]
VALUES = st.one_of(
    st.sampled_from([f"u{n}" for n in range(1, 9)] + [f"i{n}" for n in range(1, 9)]),
    st.sampled_from(["1", "2.5", "-3", "1e300", "nan", "inf", "", "abc", "1,5", '"q"']),
    st.text(max_size=4),
    st.binary(min_size=1, max_size=3).map(lambda b: b.decode("latin-1")),
)


@st.composite
def atomic_file(draw):
    """Bytes of a ``.inter`` file: a header that may be wrong, rows that may have the
    wrong number of fields, wrong types, duplicates, non-UTF-8 bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from([b"", b"\n", b"\xff\xfe\n", b"user_id:token\n"]))
    columns = draw(st.permutations(GOOD_COLUMNS))[: draw(st.integers(1, 4))]
    if draw(st.booleans()):
        columns = columns + [draw(st.sampled_from(BAD_COLUMNS))]
    rows = []
    for _ in range(draw(st.integers(0, 30))):
        if rows and draw(st.integers(0, 4)) == 0:
            rows.append(draw(st.sampled_from(rows)))  # a duplicate row
            continue
        user, item = draw(st.integers(1, 8)), draw(st.integers(1, 8))
        fields = {"user_id": f"u{user}", "item_id": f"i{item}", "rating": str(user % 5),
                  "timestamp": str(user * 10 + item)}
        row = [fields.get(column.partition(":")[0], "x") for column in columns]
        row = row[: len(row) + draw(st.sampled_from([0, 0, 0, -1]))]
        if draw(st.integers(0, 4)) == 0:
            row.append("extra")
        if row and draw(st.booleans()):
            row[draw(st.integers(0, len(row) - 1))] = draw(VALUES)
        rows.append(row)
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(["\t".join(columns)] + ["\t".join(row) for row in rows]) + newline
    data = text.encode("utf-8", "surrogateescape")
    if draw(st.integers(0, 5)) == 0:
        cut = draw(st.integers(0, len(data)))
        data = data[:cut] + b"\xff\xfe" + data[cut:]  # non-UTF-8 bytes
    return data


@FUZZ
@given(data=atomic_file())
def test_malformed_atomic_files_load_or_fail_with_one_line(workdir, data):
    with tempfile.TemporaryDirectory() as root:
        folder = pathlib.Path(root) / "fuzz"
        folder.mkdir()
        (folder / "fuzz.inter").write_bytes(data)
        before = snapshot(root)
        try:
            config = Config(
                "AnchorMultVAE",
                "fuzz",
                config_dict={"data_path": root, "load_col": None, "state": "ERROR",
                             **TINY_MODEL},
                cmd_args=[],
            )
            check_dataset_files(config)
            dataset = create_dataset(config)
            data_preparation(config, dataset)
        except RecBoleAnchorError as err:
            assert_one_line(err)
        assert snapshot(root) == before


# ----------------------------------------------------------------- config values
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, -1.0, 1e-3, 1e9, float("nan"), float("inf")]),
    st.text(max_size=6),
    st.lists(st.one_of(st.integers(-2, 12), st.text(max_size=3)), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(-2, 2), max_size=2),
)
TRAINING_KEYS = [
    "epochs", "train_batch_size", "eval_batch_size", "learning_rate", "learner",
    "weight_decay", "eval_step", "stopping_step", "clip_grad_norm", "seed", "topk",
    "metrics", "valid_metric", "valid_metric_bigger", "eval_args", "load_col",
    "field_separator", "seq_separator", "encoding", "checkpoint_dir", "worker",
    "reproducibility", "show_progress", "state", "train_neg_sample_args", "device",
    "user_inter_num_interval", "item_inter_num_interval", "val_interval",
    "mlp_hidden_size", "latent_dimension", "dropout_prob", "anneal_cap",
    "total_anneal_steps", "anchor_weight", "anchor_warmup_steps", "anchor_init_std",
    "anchor_terms",
]


@pytest.fixture(scope="module")
def tiny_data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_tiny_dataset(root)
    return root


@settings(FUZZ, max_examples=150)
@given(key=st.sampled_from(TRAINING_KEYS), value=ANY_VALUE)
def test_malformed_config_values_are_accepted_or_refused_in_one_line(tiny_data_root, key, value):
    try:
        config = Config("AnchorMultVAE", "tiny",
                        config_dict={"data_path": str(tiny_data_root), key: value}, cmd_args=[])
        check_dataset_files(config)
    except RecBoleAnchorError as err:
        assert_one_line(err)


@settings(FUZZ, max_examples=150)
@given(key=st.sampled_from(TRAINING_KEYS), text=st.text(max_size=12))
def test_command_line_values_are_parsed_safely(tiny_data_root, key, text):
    """``--key=value`` strings are read as Python literals, never evaluated as code."""
    try:
        Config("AnchorMultVAE", "tiny", config_dict={"data_path": str(tiny_data_root)},
               cmd_args=[f"--{key}={text}"])
    except RecBoleAnchorError as err:
        assert_one_line(err)


@settings(FUZZ, max_examples=12)
@given(key=st.sampled_from(TRAINING_KEYS), value=ANY_VALUE)
def test_malformed_config_values_train_or_fail_with_one_line(workdir, tiny_data_root, key, value):
    before = snapshot(tiny_data_root)
    config_dict = {"data_path": str(tiny_data_root), "epochs": 1, "state": "ERROR",
                   "show_progress": False, **TINY_MODEL, key: value}
    try:
        result = run_recbole_anchor("AnchorMultVAE", "tiny", config_dict=config_dict,
                                    cmd_args=[])
        assert result["test_result"]
    except RecBoleAnchorError as err:
        assert_one_line(err)
    assert snapshot(tiny_data_root) == before
