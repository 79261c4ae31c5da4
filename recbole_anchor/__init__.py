"""recbole-anchor: the anchor-regularized VAE recommender (AnchorMultVAE) as a RecBole plugin.

Importing the package applies the RecBole workarounds in :mod:`recbole_anchor.compat`
and registers the plugin's models with RecBole, so ``recbole.utils.get_model`` and
RecBole's own helpers know them.
"""
from recbole_anchor import compat, registry
from recbole_anchor.config import Config

compat.apply(find_plugin_model=registry.find_plugin_model, config_from_dict=Config.from_dict)

from recbole_anchor.quick_start import load_data_and_model, run_recbole_anchor  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Config", "run_recbole_anchor", "load_data_and_model", "__version__"]
