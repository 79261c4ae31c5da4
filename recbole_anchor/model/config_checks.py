"""Checks of a model's hyperparameter values, shared by the plugin's ``check_config``s.

``is_int`` and ``is_number`` are also the predicates of
:mod:`recbole_anchor.setting_checks` (RecBole's own settings), so a value means the
same thing to both.

Each check raises :class:`recbole_anchor.errors.InvalidConfigError` with one line that
names the key, its value, what it must be, and how to set it.
"""
import math
import numbers

from recbole_anchor.errors import InvalidConfigError


def fail(config, key, requirement):
    """Raise InvalidConfigError: ``config[key]`` must be ``requirement``."""
    raise InvalidConfigError(
        f"invalid {key}={config[key]!r}: it must be {requirement}; "
        f"set --{key}=... or fix it in your config file"
    )


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
