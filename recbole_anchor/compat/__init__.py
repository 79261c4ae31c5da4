"""Fixes that make RecBole 1.2.1 run on today's Python stack: nothing else.

RecBole 1.2.1 is the last release and is unmaintained. :func:`apply` (called once on
``import recbole_anchor``) patches it so that it runs on numpy 2, pandas 3, torch >= 2.6,
setuptools >= 81, scipy >= 1.13 and hyperopt >= 0.2.7, and fixes RecBole bugs that
break ordinary use; each module here fixes one upstream problem, names it (with
RecBole's issue number where there is one), and has a test that fails without it
(``tests/test_compat.py``; for those RecBole's own test suite found,
``tests/test_upstream_fixes.py``).
None of them changes what a RecBole model computes.

What the plugin adds to RecBole is elsewhere: which models, metrics and loaders RecBole
knows (:mod:`recbole_anchor.registry`), and the plugin's own training behaviour, such as
exact resume, divergence checks and stopping rules (:mod:`recbole_anchor.trainer`).

The fixes, in the order they are applied:

- :mod:`~recbole_anchor.compat.numpy_aliases`: ``Config`` assigns aliases numpy 2 removed.
- :mod:`~recbole_anchor.compat.lazy_ray`: ``recbole.quick_start`` imports Ray 2.6.3 at load.
- :mod:`~recbole_anchor.compat.ray_tune_report`: ``objective_function`` reports to Ray Tune
  outside a Tune trial too.
- :mod:`~recbole_anchor.compat.weights_only_checkpoints`: checkpoints pickle the Config,
  which torch >= 2.6 refuses to load.
- :mod:`~recbole_anchor.compat.pandas3_features`: feature loading under pandas 3
  Copy-on-Write and ``agg(len)``.
- :mod:`~recbole_anchor.compat.pandas3_sequence_lengths`: sequential benchmark files get
  the column's length as every row's ``item_list_length`` under pandas 3.
- :mod:`~recbole_anchor.compat.pandas3_seq_split_points`: normalizing, discretizing and
  entity-remapping sequence fields split them at ``agg(len)`` (pandas 3: the column's).
- :mod:`~recbole_anchor.compat.scipy_dok_update`: graph models fill their adjacency with
  ``dok_matrix._update``, gone in scipy >= 1.13.
- :mod:`~recbole_anchor.compat.hyperopt_search`: exhaustive search on hyperopt >= 0.2.7.
- :mod:`~recbole_anchor.compat.race_free_dirs`: ``ensure_dir`` races between processes.
- :mod:`~recbole_anchor.compat.cpu_distributed`: multi-process training only on CUDA.
- :mod:`~recbole_anchor.compat.torch_deprecations`: torch APIs deprecated since RecBole
  1.2.1 (``torch.cuda.amp``, list indexing).
"""
import importlib
import warnings

import recbole

#: The RecBole release these fixes were written for and tested against.
RECBOLE_VERSION = "1.2.1"

#: The fix modules, in the order :func:`apply` applies them.
FIXES = (
    "numpy_aliases",
    "lazy_ray",
    "ray_tune_report",
    "weights_only_checkpoints",
    "pandas3_features",
    "pandas3_sequence_lengths",
    "pandas3_seq_split_points",
    "scipy_dok_update",
    "hyperopt_search",
    "race_free_dirs",
    "cpu_distributed",
    "torch_deprecations",
)

_APPLIED = []


def check_recbole_version(version=None):
    """Warn in one line when the installed RecBole is not the release these fixes were
    written for (they patch its internals by name). Returns True when it is."""
    version = recbole.__version__ if version is None else version
    if version == RECBOLE_VERSION:
        return True
    warnings.warn(
        f"recbole_anchor's compatibility fixes were written for RecBole {RECBOLE_VERSION}, "
        f"but RecBole {version} is installed; install recbole=={RECBOLE_VERSION}",
        RuntimeWarning,
        stacklevel=3,
    )
    return False


def apply():
    """Apply every fix once."""
    if _APPLIED:
        return
    check_recbole_version()
    for name in FIXES:
        importlib.import_module(f"{__name__}.{name}").apply()
    _APPLIED.append(True)
