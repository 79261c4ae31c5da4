"""``import recbole.quick_start`` fails on setuptools >= 81 and numpy 2.

``recbole.quick_start`` does ``from ray import tune`` at import time; RecBole's pinned
Ray 2.6.3 imports ``pkg_resources`` (gone in setuptools >= 81) and ``np.bool8`` (gone
in numpy 2) (RecBole #2215, PR #2078). The module is imported with a stand-in
``ray.tune`` that imports the real one on first use, so only tuning with Ray needs a
working Ray.
"""
import contextlib
import importlib
import sys
import types


class LazyRayTune(types.ModuleType):
    """Stand-in for ``ray.tune`` that imports the real module on first attribute use."""

    def __getattr__(self, name):
        sys.modules.pop("ray", None)
        sys.modules.pop("ray.tune", None)
        try:
            real = importlib.import_module("ray.tune")
        except Exception as err:  # ImportError, or Ray's own AttributeError on numpy 2
            raise ImportError(
                f"Ray Tune is not usable here ({type(err).__name__}: {err}); "
                "install a Ray that runs on this Python stack, or tune with "
                "run_hyper_anchor.py --tool=optuna"
            ) from None
        return getattr(real, name)


@contextlib.contextmanager
def _stand_in_ray():
    saved = {name: sys.modules.get(name) for name in ("ray", "ray.tune")}
    ray = types.ModuleType("ray")
    ray.tune = LazyRayTune("ray.tune")
    sys.modules["ray"], sys.modules["ray.tune"] = ray, ray.tune
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def apply():
    if "recbole.quick_start.quick_start" in sys.modules:
        return
    if "ray" in sys.modules and "ray.tune" in sys.modules:
        importlib.import_module("recbole.quick_start")
        return
    with _stand_in_ray():
        importlib.import_module("recbole.quick_start")
