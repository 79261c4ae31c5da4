"""``recbole.quick_start.objective_function`` ends with ``tune.report(**test_result)``
(RecBole #1741), so every call outside a Ray Tune trial needs a working Ray: with
:mod:`~recbole_anchor.compat.lazy_ray`'s stand-in it raises "Ray Tune is not usable
here", which fails ``HyperTuning`` with hyperopt and every test of RecBole's own suite
built on it (all of ``tests/model/test_model_auto.py``).

Outside a Tune trial a report has nothing to report to (Ray itself only logs "Session
not detected" there), so ``quick_start``'s ``tune`` now reports only inside one: when
the real Ray Tune is loaded and its session is enabled; everything else it is asked
for comes from the ``tune`` it replaces. ``objective_function`` then returns its
result dict.
"""
import sys
import types

from recbole_anchor.compat.lazy_ray import LazyRayTune


def in_tune_session():
    """True inside a Ray Tune trial: the real ``ray.tune`` is loaded (a trial cannot run
    without it) and says its session is enabled."""
    real = sys.modules.get("ray.tune")
    if real is None or isinstance(real, LazyRayTune):
        return False
    enabled = getattr(real, "is_session_enabled", None)
    return True if enabled is None else bool(enabled())


class SessionAwareTune(types.ModuleType):
    """``ray.tune`` as ``recbole.quick_start`` sees it: ``report`` reaches Ray only inside
    a Tune trial; any other attribute is the wrapped module's."""

    def __init__(self, wrapped):
        super().__init__("ray.tune")
        self._wrapped = wrapped

    def __getattr__(self, name):
        return getattr(self._wrapped, name)

    def report(self, *args, **metrics):
        """Report ``metrics`` to the running Tune trial; outside one, do nothing."""
        if in_tune_session():
            return sys.modules["ray.tune"].report(*args, **metrics)
        return None


def apply():
    from recbole.quick_start import quick_start

    if not isinstance(quick_start.tune, SessionAwareTune):
        quick_start.tune = SessionAwareTune(quick_start.tune)
