"""numpy 2 removed ``np.float_``, ``np.complex_`` and ``np.unicode_``.

RecBole 1.2.1's ``Config.compatibility_settings`` assigns them (and ``np.bool`` & co.),
so every ``Config()`` raises AttributeError on numpy 2 (RecBole #2215, #2174, #2162).
Replaced by a version that only adds the aliases RecBole's code still uses
(``np.long``, ``np.bool``, ...) where numpy lacks them.
"""
import numpy as np
from recbole.config import configurator

# Aliases RecBole 1.2.1 assigns in Config.compatibility_settings, mapped to types that
# exist in numpy 1.x and 2.x alike.
NUMPY_ALIASES = {
    "bool": np.bool_,
    "int": np.int_,
    "float": np.float64,
    "complex": np.complex128,
    "object": np.object_,
    "str": np.str_,
    "long": np.int_,
    "unicode": np.str_,
}


def compatibility_settings(self):
    """numpy-2-safe stand-in for ``Config.compatibility_settings``."""
    for name, dtype in NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, dtype)


def apply():
    configurator.Config.compatibility_settings = compatibility_settings
