"""Type and range checks of config values, with one error format.

RecBole's Config takes most values as given; a wrong type then fails deep inside
training (``'NoneType' object has no attribute 'split'``, an optimizer's ``Invalid
learning rate``) or, for some values, trains on nonsense. Two kinds of check share
the predicates and the message here:

- :func:`check_user_values`: the RecBole settings the user gave (config files,
  ``config_dict``, command line), checked against :data:`CHECKS` before RecBole uses them;
- the model checks (:func:`check_nonnegative`, :func:`check_int_at_least`,
  :func:`check_dropout`, :func:`fail`), which each plugin model's ``check_config`` calls
  on its hyperparameters.

Every failure is one :class:`~recbole_anchor.errors.InvalidConfigError` that names the
key, its value, what it must be, and how to set it.
"""
import codecs
import math
import numbers

from recbole.evaluator.register import metric_types

from recbole_anchor.errors import InvalidConfigError

def invalid(key, value, requirement):
    """The one-line error: ``key`` has ``value``, which must be ``requirement``."""
    return InvalidConfigError(
        f"invalid {key}={value!r}: it must be {requirement}; "
        f"set --{key}=... or fix it in your config file"
    )


def fail(config, key, requirement):
    """Raise InvalidConfigError: ``config[key]`` must be ``requirement``."""
    raise invalid(key, config[key], requirement)


def is_number(value):
    """True for a finite real number (not a bool, not NaN or infinity)."""
    return (
        isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    )


def is_int(value):
    """True for an integer, Python's or numpy's (not a bool)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def number(config, key):
    """``config[key]``, checked to be a number."""
    value = config[key]
    if not is_number(value):
        fail(config, key, "a number")
    return value


def check_nonnegative(config, *keys):
    """Each of ``keys`` is a number >= 0."""
    for key in keys:
        if number(config, key) < 0:
            fail(config, key, ">= 0")


def check_int_at_least(config, low, *keys):
    """Each of ``keys`` is an integer >= ``low``."""
    for key in keys:
        value = config[key]
        if not is_int(value) or value < low:
            fail(config, key, f"an integer >= {low}")


def check_dropout(config, key="dropout_prob"):
    """``config[key]`` is a dropout rate in [0, 1)."""
    if not 0 <= number(config, key) < 1:
        fail(config, key, "in [0, 1)")


# --- RecBole settings ---------------------------------------------------------------

LEARNERS = ("adam", "adamw", "sgd", "adagrad", "rmsprop", "sparse_adam")
LOG_STATES = ("info", "debug", "error", "warning", "critical")
EVAL_ARGS_KEYS = ("split", "order", "group_by", "mode")


def _int_at_least(low, high=None):
    def check(value):
        return is_int(value) and value >= low and (high is None or value <= high)

    bounds = f"an integer >= {low}" + (f" and <= {high}" if high is not None else "")
    return check, bounds


def _positive_ints(value):
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(is_int(k) and k > 0 for k in values)


def _metric_name(name):
    return isinstance(name, str) and name.lower() in metric_types


def _metrics(value):
    """Names are RecBole's to check (it names the unknown one)."""
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(isinstance(name, str) for name in values)


def _valid_metric(value):
    if not isinstance(value, str):
        return False
    name, _, k = value.partition("@")
    return _metric_name(name) and (not k or (k.isdigit() and int(k) > 0))


def _codec(value):
    """A text encoding (``hex`` and ``rot13`` are codecs too, but not of text)."""
    try:
        return codecs.lookup(value)._is_text_encoding
    except (LookupError, TypeError, ValueError):
        return False


def _columns(value):
    return value is None or (
        isinstance(value, dict)
        and all(
            isinstance(columns, list) and all(isinstance(c, str) for c in columns)
            for columns in value.values()
        )
    )


def _interval(value):
    """None, or RecBole's intervals: ``[low,high)`` parts joined by ``;``, low <= high."""
    if value is None:
        return True
    if not isinstance(value, str):
        return False
    for part in value.split(";"):
        part = part.strip()
        ends = part[1:-1].split(",")
        if len(part) < 2 or part[0] not in "([" or part[-1] not in ")]" or len(ends) != 2:
            return False
        try:
            low, high = float(ends[0]), float(ends[1])
        except ValueError:
            return False
        if math.isnan(low) or math.isnan(high) or low > high:
            return False
    return True


def _clip_grad_norm(value):
    if value is None:
        return True
    allowed = {"max_norm", "norm_type", "error_if_nonfinite", "foreach"}
    return (
        isinstance(value, dict)
        and set(value) <= allowed
        and is_number(value.get("max_norm"))
        and value["max_norm"] > 0
        and is_number(value.get("norm_type", 2.0))
    )


def _eval_args(value):
    if not isinstance(value, dict) or not set(value) <= set(EVAL_ARGS_KEYS):
        return False
    split, mode = value.get("split"), value.get("mode")
    return (
        (split is None or (isinstance(split, dict) and len(split) == 1))
        and value.get("order") in (None, "RO", "TO")
        and value.get("group_by") in (None, "user", "none")
        and (mode is None or isinstance(mode, (str, dict)))
    )


_NON_EMPTY_STR = (lambda v: isinstance(v, str) and v != "", "a non-empty string")
_BOOL = (lambda v: isinstance(v, bool), "True or False")
_DICT_OR_NONE = (lambda v: v is None or isinstance(v, dict), "a dict or None")
_INTERVAL = (_interval, "None or intervals such as '[5,inf)' or '(0,10];[20,inf)'")

#: key -> (check, what the value must be)
CHECKS = {
    "epochs": _int_at_least(0),
    "train_batch_size": _int_at_least(1),
    "eval_batch_size": _int_at_least(1),
    "eval_step": _int_at_least(0),
    "stopping_step": _int_at_least(0),
    "worker": _int_at_least(0),
    "seed": _int_at_least(0, 2**32 - 1),
    "learning_rate": (lambda v: is_number(v) and v > 0, "a finite number > 0"),
    "weight_decay": (lambda v: is_number(v) and v >= 0, "a finite number >= 0"),
    "learner": (
        lambda v: isinstance(v, str) and v.lower() in LEARNERS,
        f"one of {list(LEARNERS)}",
    ),
    "topk": (_positive_ints, "a positive integer or a list of them, e.g. [10, 20]"),
    "metrics": (_metrics, "a metric name or a list of them, e.g. ['Recall', 'NDCG']"),
    "valid_metric": (_valid_metric, "a metric and cutoff such as 'NDCG@10'"),
    "valid_metric_bigger": _BOOL,
    "reproducibility": _BOOL,
    "show_progress": _BOOL,
    "fused_optimizer": _BOOL,
    "keep_freed_memory": _BOOL,
    "download": _BOOL,
    "state": (
        lambda v: v is None or (isinstance(v, str) and v.lower() in LOG_STATES),
        f"one of {list(LOG_STATES)}",
    ),
    "clip_grad_norm": (
        _clip_grad_norm,
        "None or the arguments of torch's clip_grad_norm_, e.g. {'max_norm': 5, 'norm_type': 2}",
    ),
    "train_neg_sample_args": _DICT_OR_NONE,
    "val_interval": _DICT_OR_NONE,
    "eval_args": (
        _eval_args,
        "a dict with keys from split, order (RO/TO), group_by (user/none), mode",
    ),
    "load_col": (
        lambda v: v is None or (bool(v) and _columns(v)),
        "a non-empty dict from file suffix to a list of column names, or None",
    ),
    "unload_col": (_columns, "a dict from file suffix to a list of column names, or None"),
    "field_separator": _NON_EMPTY_STR,
    "seq_separator": _NON_EMPTY_STR,
    "encoding": (_codec, "a text encoding Python knows, e.g. utf-8"),
    "checkpoint_dir": _NON_EMPTY_STR,
    "data_path": _NON_EMPTY_STR,
    "user_inter_num_interval": _INTERVAL,
    "item_inter_num_interval": _INTERVAL,
}


def check_user_values(values):
    """Raise InvalidConfigError for the first value in ``values`` (the settings the
    user gave) that fails its check in :data:`CHECKS`."""
    for key, value in values.items():
        if key not in CHECKS:
            continue
        check, requirement = CHECKS[key]
        if not check(value):
            raise invalid(key, value, requirement)


def check_valid_metric_is_computed(final):
    """``valid_metric`` (e.g. ``NDCG@100``) must be one of the metrics at one of the
    ``topk`` cut-offs that are computed, or early stopping fails after the first epoch."""
    name, _, k = str(final["valid_metric"]).partition("@")
    metrics = [m.lower() for m in final["metrics"]]
    topk = final["topk"] or []
    if name.lower() not in metrics or (k and (not k.isdigit() or int(k) not in topk)):
        raise InvalidConfigError(
            f"valid_metric={final['valid_metric']} is not computed (metrics {final['metrics']}, "
            f"topk {topk}); add it to metrics/topk or set --valid_metric to one that is"
        )
