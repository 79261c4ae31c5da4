"""Property-based tests: each generated atomic file and config value has its expected
outcome, stated here: it loads (or trains), or it fails with a one-line
RecBoleAnchorError that names its key, file or line; never another exception, and
never a change to the dataset folder."""
import ast
import codecs
import hashlib
import math
import os
import pathlib
import re
import tempfile

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from recbole.evaluator.register import metric_types
from recbole.utils import EvaluatorType

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
HEADER = ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]

#: One defect each, as (name, expected error pattern with {line} for the defect's line
#: number, or None when the file must load). The first line of the file is line 1.
DEFECTS = {
    "none": None,
    "duplicate rows": None,  # RecBole keeps repeated interactions; they load
    "crlf newlines": None,
    "empty file": r"fuzz\.inter:1: empty file or empty header",
    "unknown column type": r"fuzz\.inter:1: column 'item_id:tokn' is not name:type",
    "column without type": r"fuzz\.inter:1: column 'item_id' is not name:type",
    "column twice": r"fuzz\.inter:1: column 'user_id' appears twice",
    "non-utf-8 header": r"fuzz\.inter:1: header is not valid utf-8",
    "non-utf-8 row": r"fuzz\.inter:{line}: bytes that are not valid utf-8",
    "float field not a number": r"fuzz\.inter:{line}: field 'rating' is float but holds 'x{line}'",
    "no item column": r"dataset 'fuzz' .* cannot be used: 'item_id'",
}


@st.composite
def atomic_file(draw):
    """(bytes of a ``.inter`` file, its defect, the defect's line): 12-20 users with
    5-8 distinct of 30 items each (a file that loads), with one defect drawn from
    :data:`DEFECTS` at a drawn line."""
    rows = []
    for user in range(1, draw(st.integers(12, 20)) + 1):
        items = draw(st.lists(st.integers(1, 30), min_size=5, max_size=8, unique=True))
        rows += [[f"u{user}", f"i{item}", str(user % 5), str(user * 100 + item)] for item in items]
    defect = draw(st.sampled_from(sorted(DEFECTS)))
    header, newline, line = list(HEADER), "\n", 1
    if defect == "duplicate rows":
        rows += draw(st.lists(st.sampled_from(rows), min_size=1, max_size=5))
    elif defect == "crlf newlines":
        newline = "\r\n"
    elif defect == "unknown column type":
        header[1] = "item_id:tokn"
    elif defect == "column without type":
        header[1] = "item_id"
    elif defect == "column twice":
        header[1] = "user_id:token"
    elif defect == "no item column":
        header, rows = [header[0], header[2]], [[row[0], row[2]] for row in rows]
    elif defect in ("non-utf-8 row", "float field not a number"):
        line = draw(st.integers(2, len(rows) + 1))
        if defect == "float field not a number":
            rows[line - 2][2] = f"x{line}"
    text = newline.join(["\t".join(header)] + ["\t".join(row) for row in rows]) + newline
    data = text.encode("utf-8")
    if defect == "empty file":
        data = draw(st.sampled_from([b"", b"\n", b"\r\n"]))
    elif defect == "non-utf-8 header":
        data = b"user_id:token\xff\t" + data[len("user_id:token\t"):]
    elif defect == "non-utf-8 row":
        lines = data.split(b"\n")
        lines[line - 1] = lines[line - 1][:2] + b"\xff\xfe" + lines[line - 1][2:]
        data = b"\n".join(lines)
    return data, defect, line


@settings(FUZZ, max_examples=60)
@given(case=atomic_file())
def test_malformed_atomic_files_load_or_fail_as_specified(workdir, case):
    """Each file loads, or fails with the one-line error that names its defect's file
    and line (:data:`DEFECTS`); the dataset folder is never changed."""
    data, defect, line = case
    with tempfile.TemporaryDirectory() as root:
        folder = pathlib.Path(root) / "fuzz"
        folder.mkdir()
        (folder / "fuzz.inter").write_bytes(data)
        before = snapshot(root)

        def attempt():
            config = Config(
                "AnchorMultVAE",
                "fuzz",
                config_dict={"data_path": root, "load_col": None, "state": "ERROR",
                             "user_inter_num_interval": "[0,inf)", **TINY_MODEL},
                cmd_args=[],
            )
            check_dataset_files(config)
            dataset = create_dataset(config)
            data_preparation(config, dataset)

        expected = DEFECTS[defect]
        assert_outcome(None if expected is None else expected.format(line=line), attempt)
        assert snapshot(root) == before


# ----------------------------------------------------------------- config values
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, -1.0, 1e-3, 0.5, 1e9, float("nan"), float("inf"), 2**33]),
    st.text(max_size=6),
    st.sampled_from([  # strings some keys accept, and near misses
        "\t", ",", "utf-8", "latin-1", "utf-16", "no-codec", "NDCG@10", "mrr@10", "NDCG@5",
        "map@10", "NDCG", "adam", "SGD", "adamx", "INFO", "error", "[5, 10]", "[10]", "{}",
        "true", "[0,inf)", "saved_here",
    ]),
    st.lists(st.one_of(st.integers(-2, 12), st.text(max_size=3)), max_size=3),
    st.lists(st.sampled_from(["NDCG", "MRR", "Recall", "mae", "nope", "pull", "spread"]),
             min_size=1, max_size=3),
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


def as_read(value):
    """A value as the config reads it: a string that is a Python literal becomes that
    literal, 'true'/'false' become bools (as on the command line)."""
    if not isinstance(value, str):
        return value
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return {"true": True, "false": False}.get(value.lower(), value)
    return value if isinstance(parsed, (set, complex, bytes)) else parsed


def _int(v, low, high=None):
    return isinstance(v, int) and not isinstance(v, bool) and v >= low and (high is None or v <= high)


def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


#: One interval of RecBole's filters, e.g. ``[5,inf)`` or ``(0.5, 3]``.
_ONE_INTERVAL = r"\s*[\[(]\s*-?(\d+(\.\d*)?|inf)\s*,\s*-?(\d+(\.\d*)?|inf)\s*[\])]\s*"


def _intervals(v):
    """``[low,high)`` parts joined by ``;``, each with low <= high."""
    if not isinstance(v, str) or not re.fullmatch(f"{_ONE_INTERVAL}(;{_ONE_INTERVAL})*", v):
        return False
    ends = [part.strip()[1:-1].split(",") for part in v.split(";")]
    return all(float(low) <= float(high) for low, high in ends)


def _text_codec(v):
    try:
        return codecs.lookup(v)._is_text_encoding
    except (LookupError, TypeError, ValueError):
        return False


#: The default metrics and topk of the tiny runs: valid_metric MRR@10 must be computed.
DEFAULT_METRICS, DEFAULT_TOPK = ("recall", "mrr", "ndcg", "hit", "precision"), (10,)
EVAL_ARGS_KEYS = {"split", "order", "group_by", "mode"}

#: key -> what a value must be to be accepted (the README's and the yaml's contract).
VALID = {
    "epochs": lambda v: _int(v, 0),
    "train_batch_size": lambda v: _int(v, 1),
    "eval_batch_size": lambda v: _int(v, 1),
    "eval_step": lambda v: _int(v, 0),
    "stopping_step": lambda v: _int(v, 0),
    "worker": lambda v: _int(v, 0),
    "seed": lambda v: _int(v, 0, 2**32 - 1),
    "learning_rate": lambda v: _number(v) and v > 0,
    "weight_decay": lambda v: _number(v) and v >= 0,
    "learner": lambda v: isinstance(v, str)
    and v.lower() in ("adam", "adamw", "sgd", "adagrad", "rmsprop", "sparse_adam"),
    "topk": lambda v: (v if isinstance(v, list) else [v]) != []
    and all(_int(k, 1) for k in (v if isinstance(v, list) else [v])),
    "metrics": lambda v: (v if isinstance(v, list) else [v]) != []
    and all(isinstance(m, str) for m in (v if isinstance(v, list) else [v])),
    "valid_metric": lambda v: isinstance(v, str) and v.partition("@")[0].lower() in metric_types
    and (v.partition("@")[2] == "" or (v.partition("@")[2].isdigit() and int(v.partition("@")[2]) > 0)),
    "valid_metric_bigger": lambda v: isinstance(v, bool),
    "reproducibility": lambda v: isinstance(v, bool),
    "show_progress": lambda v: isinstance(v, bool),
    "state": lambda v: v is None
    or (isinstance(v, str) and v.lower() in ("info", "debug", "error", "warning", "critical")),
    "clip_grad_norm": lambda v: v is None or (
        isinstance(v, dict) and set(v) <= {"max_norm", "norm_type", "error_if_nonfinite", "foreach"}
        and _number(v.get("max_norm")) and v["max_norm"] > 0 and _number(v.get("norm_type", 2))),
    "train_neg_sample_args": lambda v: v is None or isinstance(v, dict),
    "val_interval": lambda v: v is None or isinstance(v, dict),
    "eval_args": lambda v: isinstance(v, dict) and set(v) <= EVAL_ARGS_KEYS,
    "load_col": lambda v: v is None or (isinstance(v, dict) and v != {} and all(
        isinstance(c, list) and all(isinstance(x, str) for x in c) for c in v.values())),
    "field_separator": lambda v: isinstance(v, str) and v != "",
    "seq_separator": lambda v: isinstance(v, str) and v != "",
    "encoding": lambda v: isinstance(v, str) and _text_codec(v),
    "checkpoint_dir": lambda v: isinstance(v, str) and v != "",
    "device": lambda v: True,  # RecBole sets the device from gpu_id
    "user_inter_num_interval": lambda v: v is None or _intervals(v),
    "item_inter_num_interval": lambda v: v is None or _intervals(v),
    "mlp_hidden_size": lambda v: isinstance(v, list) and all(_int(h, 1) for h in v),
    "latent_dimension": lambda v: _int(v, 1),
    "dropout_prob": lambda v: _number(v) and 0 <= v < 1,
    "anneal_cap": lambda v: _number(v) and v >= 0,
    "total_anneal_steps": lambda v: _int(v, 0),
    "anchor_weight": lambda v: _number(v) and v >= 0,
    "anchor_warmup_steps": lambda v: _int(v, 0),
    "anchor_init_std": lambda v: _number(v) and v >= 0,
    "anchor_terms": lambda v: v is None
    or (isinstance(v, list) and set(v) <= {"pull", "variance", "spread"}),
}


def expected_config_outcome(key, value):
    """None when the config must accept ``key: value``, else a pattern the one-line
    error must match: it names the key (or, for a value RecBole reads, the value)."""
    v = as_read(value)
    if not VALID[key](v):
        return rf"^invalid {key}="
    listed = v if isinstance(v, list) else [v]
    if key == "metrics":
        unknown = [m for m in listed if m.lower() not in metric_types]
        if unknown:
            return re.escape(f"There is no metric named '{unknown[0]}'")
        if any(metric_types[m.lower()] == EvaluatorType.VALUE for m in listed):
            return r"value-based metrics"  # a ranking run cannot compute MAE, AUC, ...
        if "mrr" not in [m.lower() for m in listed]:
            return r"^valid_metric=MRR@10 is not computed"
    if key == "topk" and 10 not in listed:
        return r"^valid_metric=MRR@10 is not computed"
    if key == "valid_metric":
        name, _, k = v.partition("@")
        if name.lower() not in DEFAULT_METRICS or (k and int(k) not in DEFAULT_TOPK):
            return rf"^valid_metric={re.escape(v)} is not computed"
    if key == "field_separator" and v != "\t":
        return r"tiny\.inter:1: "  # the header does not split into name:type columns
    if key == "encoding" and b"user_id".decode(v, errors="replace") != "user_id":
        return r"tiny\.inter:1: header is not valid"
    if key == "load_col" and any(c not in GOOD_HEADER for c in (v or {}).get("inter") or []):
        return r"tiny\.inter:1: columns .* asked for by load_col"
    return None


GOOD_HEADER = ("user_id", "item_id", "rating", "timestamp")


def assert_outcome(expected, attempt):
    """Run ``attempt``; it must succeed when ``expected`` is None, else raise a one-line
    RecBoleAnchorError matching ``expected``."""
    if expected is None:
        attempt()
        return
    with pytest.raises(RecBoleAnchorError) as error:
        attempt()
    assert_one_line(error.value)
    assert re.search(expected, str(error.value)), (expected, str(error.value))


@pytest.fixture(scope="module")
def tiny_data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_tiny_dataset(root)
    return root


@settings(FUZZ, max_examples=150)
@given(key=st.sampled_from(TRAINING_KEYS), value=ANY_VALUE)
def test_config_values_are_accepted_or_refused_as_specified(tiny_data_root, key, value):
    """Each value is accepted or refused exactly as :data:`VALID` and
    :func:`expected_config_outcome` say, refusals in one line naming the key."""
    def attempt():
        config = Config("AnchorMultVAE", "tiny",
                        config_dict={"data_path": str(tiny_data_root), key: value}, cmd_args=[])
        check_dataset_files(config)

    assert_outcome(expected_config_outcome(key, value), attempt)


@settings(FUZZ, max_examples=150)
@given(key=st.sampled_from(TRAINING_KEYS), text=st.text(max_size=12) | st.sampled_from(
    ["__import__('os').getcwd()", "[1, 2]", "0.5", "true", "None", "{'a': 1}"]))
def test_command_line_values_are_parsed_safely(tiny_data_root, key, text):
    """``--key=value`` strings are read as Python literals, never evaluated as code,
    and then accepted or refused as the same value in a config dict would be."""
    def attempt():
        config = Config("AnchorMultVAE", "tiny", config_dict={"data_path": str(tiny_data_root)},
                        cmd_args=[f"--{key}={text}"])
        check_dataset_files(config)
        if key in KEPT_AS_READ:
            assert config[key] == as_read(text)  # a string stays that string, not run

    assert_outcome(expected_config_outcome(key, text), attempt)


#: Keys whose accepted value the config keeps exactly as read.
KEPT_AS_READ = ("checkpoint_dir", "seq_separator", "epochs", "learning_rate", "anchor_weight",
                "mlp_hidden_size", "anchor_terms")


#: Values the config accepts but training then refuses, each with the one-line error.
FAILS_IN_TRAINING = {}


@settings(FUZZ, max_examples=12)
@given(key=st.sampled_from(TRAINING_KEYS), value=ANY_VALUE)
def test_config_values_train_or_fail_as_specified(workdir, tiny_data_root, key, value):
    """A value the config refuses is refused the same way by a run; one it accepts
    trains to a test result (or fails as :data:`FAILS_IN_TRAINING` says); the dataset
    folder is never changed."""
    before = snapshot(tiny_data_root)
    config_dict = {"data_path": str(tiny_data_root), "epochs": 1, "state": "ERROR",
                   "show_progress": False, **TINY_MODEL, key: value}
    expected = expected_config_outcome(key, value)
    if expected is None and isinstance(as_read(value), str):
        expected = FAILS_IN_TRAINING.get((key, as_read(value)))

    def attempt():
        result = run_recbole_anchor("AnchorMultVAE", "tiny", config_dict=config_dict, cmd_args=[])
        assert result["test_result"] and all(
            math.isfinite(value) for value in result["test_result"].values()
        )

    assert_outcome(expected, attempt)
    assert snapshot(tiny_data_root) == before


@pytest.mark.parametrize("codec", ["hex", "rot13"])
def test_non_text_codec_is_refused_in_one_line(tiny_data_root, codec):
    def attempt():
        config = Config("AnchorMultVAE", "tiny",
                        config_dict={"data_path": str(tiny_data_root), "encoding": codec}, cmd_args=[])
        check_dataset_files(config)

    assert_outcome(r"^invalid encoding=", attempt)


@pytest.mark.parametrize("key, value", [("clip_grad_norm", {"a": 1}), ("load_col", {})])
def test_values_read_only_in_training_are_refused_in_one_line(workdir, tiny_data_root, key, value):
    config_dict = {"data_path": str(tiny_data_root), "epochs": 1, "state": "ERROR",
                   "show_progress": False, **TINY_MODEL, key: value}
    assert_outcome(rf"{key}", lambda: run_recbole_anchor(
        "AnchorMultVAE", "tiny", config_dict=config_dict, cmd_args=[]))
