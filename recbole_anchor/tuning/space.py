"""Search spaces: RecBole's ``.hyper`` files and their exact Optuna distributions.

A ``.hyper`` file has one ``name kind values`` line per parameter, as RecBole's
``run_hyper.py`` reads it:

- ``choice [a, b, ...]``: one of the listed Python literals (lists allowed, e.g.
  ``[[600],[300,300]]``) -> ``CategoricalDistribution``. Optuna stores only
  ``None``/bool/int/float/str, so when an option is anything else every option is
  stored under its ``repr`` and handed back as the real value.
- ``uniform a,b`` -> ``FloatDistribution(a, b)``.
- ``quniform a,b,q`` -> ``FloatDistribution(a, b, step=q)``; given back as ``int``
  when ``a``, ``b`` and ``q`` are all written as integers.
- ``loguniform a,b`` -> ``FloatDistribution(exp(a), exp(b), log=True)``: the bounds
  are natural logarithms, as in hyperopt and RecBole.
"""
import ast
import math
import os
from dataclasses import dataclass, field

from optuna.distributions import CategoricalDistribution, FloatDistribution

from recbole_anchor.errors import InvalidConfigError

KINDS = ("choice", "uniform", "quniform", "loguniform")
_STORABLE = (type(None), bool, int, float, str)


def read_params_file(path):
    """``[(name, kind, value_text)]`` of a RecBole .hyper file (``name kind value``)."""
    if not os.path.isfile(path):
        raise InvalidConfigError(f"params file '{path}' does not exist; check --params_file")
    params = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            if len(parts) < 3 or parts[1] not in KINDS:
                raise InvalidConfigError(
                    f"{path}:{number}: expected 'name choice|uniform|quniform|loguniform "
                    f"values', got {line.strip()!r}"
                )
            params.append((parts[0], parts[1], "".join(parts[2:])))
    if not params:
        raise InvalidConfigError(f"{path}: no parameters to search")
    return params


def without_keys(params, keys):
    """``params`` less the parameters named in ``keys`` (those a model variant fixes)."""
    keys = set(keys)
    return [param for param in params if param[0] not in keys]


@dataclass(frozen=True)
class Parameter:
    """One searched parameter: its Optuna distribution and how to give back its value."""

    name: str
    distribution: object
    labels: dict = field(default=None)  # stored label -> real value (non-storable choices)
    integer: bool = False

    def suggest(self, trial):
        """Draw this parameter in ``trial``; the real config value."""
        dist = self.distribution
        if isinstance(dist, CategoricalDistribution):
            stored = trial.suggest_categorical(self.name, dist.choices)
        else:
            stored = trial.suggest_float(
                self.name, dist.low, dist.high, step=dist.step, log=dist.log
            )
        return self.value(stored)

    def stored(self, value):
        """How Optuna stores the config value ``value`` (inverse of :meth:`value`)."""
        if self.labels is not None:
            return repr(value)
        return value

    def value(self, stored):
        """The config value of a value as Optuna stores it."""
        if self.labels is not None:
            return self.labels[stored]
        if self.integer:
            return int(round(stored))
        return stored


def optuna_space(params):
    """``[Parameter]`` for ``[(name, kind, value_text)]`` as :func:`read_params_file` gives."""
    return [_parameter(name, kind, text) for name, kind, text in params]


def suggest(trial, space):
    """Config overrides of one trial: every parameter of ``space`` drawn in ``trial``."""
    return {param.name: param.suggest(trial) for param in space}


def config_values(space, stored_params):
    """Real config values of Optuna's stored ``trial.params`` (names outside ``space``,
    from an older space of the same study, are given back as stored)."""
    by_name = {param.name: param for param in space}
    return {
        name: by_name[name].value(value) if name in by_name else value
        for name, value in stored_params.items()
    }


def stored_values(space, values):
    """Optuna's stored form of the config values ``values`` of ``space``'s parameters
    (to enqueue a given configuration, e.g. the defaults)."""
    by_name = {param.name: param for param in space}
    return {name: by_name[name].stored(value) for name, value in values.items() if name in by_name}


def is_grid(space):
    """Whether every parameter is a ``choice`` (a grid can enumerate it)."""
    return all(isinstance(param.distribution, CategoricalDistribution) for param in space)


def _parameter(name, kind, text):
    if kind == "choice":
        try:
            options = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise InvalidConfigError(
                f"{name}: cannot read choice {text!r}; write a list of literals, "
                "e.g. [0.1,0.2] or [[600],[300,300]]"
            ) from None
        if not isinstance(options, (list, tuple)) or not options:
            raise InvalidConfigError(f"{name}: choice needs a non-empty list, got {text!r}")
        if all(isinstance(option, _STORABLE) for option in options):
            labels = None
            choices = list(options)
        else:
            labels = {repr(option): option for option in options}
            choices = list(labels)
        if len(set(map(repr, choices))) != len(choices):
            raise InvalidConfigError(f"{name}: choice {text!r} lists an option twice")
        return Parameter(name, CategoricalDistribution(choices), labels=labels)
    parts = text.split(",")
    try:
        bounds = [float(part) for part in parts]
    except ValueError:
        raise InvalidConfigError(f"{name}: cannot read {kind} bounds {text!r}") from None
    expected = 3 if kind == "quniform" else 2
    if len(bounds) != expected:
        form = "low,high,q" if kind == "quniform" else "low,high"
        raise InvalidConfigError(f"{name}: {kind} takes {form}, got {text!r}")
    low, high = bounds[0], bounds[1]
    if not low < high:
        raise InvalidConfigError(f"{name}: {kind} needs low < high, got {text!r}")
    if kind == "uniform":
        return Parameter(name, FloatDistribution(low, high))
    if kind == "loguniform":
        return Parameter(name, FloatDistribution(math.exp(low), math.exp(high), log=True))
    step = bounds[2]
    steps = (high - low) / step if step > 0 else 0.0
    if step <= 0 or abs(steps - round(steps)) > 1e-9 * max(1.0, steps):
        raise InvalidConfigError(
            f"{name}: quniform {text!r} needs q > 0 and high - low a multiple of q"
        )
    integer = all(_is_integer_literal(part) for part in parts)
    return Parameter(name, FloatDistribution(low, high, step=step), integer=integer)


def _is_integer_literal(text):
    try:
        int(text)
    except ValueError:
        return False
    return True
