r"""Ranking metrics of Liang et al. (WWW 2018), in RecBole's metric system.

``import recbole_anchor`` registers every class here with RecBole
(:func:`recbole_anchor.registry.install`), so ``metrics``, ``topk`` and
``valid_metric`` accept them by name like RecBole's own.

RecBole's ``NDCG`` already is Liang's NDCG@K (binary gain, ideal DCG over
:math:`\min(K, |T_u|)` hits), as ``tests/test_metrics.py`` checks.
"""
import numpy as np
from recbole.evaluator.base_metric import TopkMetric


class TruncRecall(TopkMetric):
    r"""Truncated Recall@K of Liang et al.: hits in the top K divided by the most
    hits possible, so a perfect ranking scores 1 even when :math:`|T_u| > K`:

    .. math::
        \mathrm{Recall@K}(u) = \frac{\sum_{i=1}^{K} \delta(\omega(i) \in T_u)}
                                    {\min(K, |T_u|)}

    with :math:`\omega(i)` the item at rank :math:`i` and :math:`T_u` the user's
    targets. RecBole's ``Recall`` divides by :math:`|T_u|` instead.
    """

    def calculate_metric(self, dataobject):
        pos_index, pos_len = self.used_info(dataobject)
        result = self.metric_info(pos_index, pos_len)
        return self.topk_result("truncrecall", result)

    def metric_info(self, pos_index, pos_len):
        hits = np.cumsum(pos_index, axis=1)
        cutoffs = np.arange(1, pos_index.shape[1] + 1)
        return hits / np.minimum(cutoffs[None, :], pos_len[:, None])
