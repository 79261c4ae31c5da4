"""RecBole's graph models crash on scipy >= 1.13 with ``AttributeError: 'dok_matrix'
object has no attribute '_update'`` (RecBole #2034, #2090).

LightGCN, NGCF, NCL, GCMC and SpectralCF, and the knowledge-aware KGIN and MCCLK, build
their user-item adjacency matrix as a ``scipy.sparse.dok_matrix`` filled by
``A._update(data_dict)``, scipy's old private bulk insert: a plain dict update of
``(row, col) -> value`` with no checks. Newer scipy keeps a dok matrix's entries in
its ``_dict`` and has no ``_update``; the public ``update`` it has instead checks
every key in a Python loop. ``dok_matrix`` gets
back an ``_update`` that does what the old one did (one ``dict.update`` of the entries),
so the models build the same matrices as on older scipy, as fast.
"""
import scipy.sparse as sp


def _update(self, data):
    """Set the entries of ``data`` (a dict of ``(row, col) -> value``) in one dict
    update, unchecked, as older scipy's private ``dok_matrix._update`` did."""
    self._dict.update(data)


def apply():
    if not hasattr(sp.dok_matrix, "_update") and hasattr(sp.dok_matrix((1, 1)), "_dict"):
        sp.dok_matrix._update = _update
