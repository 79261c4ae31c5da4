"""recbole-anchor: the anchor-regularized VAE recommender (AnchorMultVAE) as a RecBole plugin.

Importing the package does two things, in this order:

1. :func:`recbole_anchor.compat.apply` fixes RecBole 1.2.1 for today's stack (numpy 2,
   pandas 3, torch >= 2.6, ...): ``recbole_anchor/compat/``, one module per problem;
2. :func:`recbole_anchor.registry.install` tells RecBole about the plugin's models,
   metrics and loaders, so ``recbole.utils.get_model`` and RecBole's own helpers know
   them.

The plugin's own training behaviour (exact resume, stopping rules, divergence checks)
is in ``recbole_anchor/trainer/``; runs through :func:`run_recbole_anchor` get it for
every model.
"""
from recbole_anchor import compat

compat.apply()

from recbole_anchor import registry  # noqa: E402
from recbole_anchor.config import Config  # noqa: E402
from recbole_anchor.quick_start import load_data_and_model, run_recbole_anchor  # noqa: E402

registry.install(load_data_and_model=load_data_and_model)

__version__ = "0.1.0"
__all__ = ["Config", "run_recbole_anchor", "load_data_and_model", "__version__"]
