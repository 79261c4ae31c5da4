"""RecBole's Evaluator, also keeping each user's value of every top-k metric.

RecBole's top-k metrics compute a (users x max k) matrix of per-user values and report
its column means. :class:`PerUserEvaluator` reports the same means from the same
matrices and keeps the per-user columns (``last_per_user``), in the order the
evaluation loader served the users, for paired significance tests and evaluation by
user group.
"""
import inspect
from collections import OrderedDict

from recbole.evaluator import Evaluator
from recbole.evaluator.base_metric import TopkMetric


def per_user_values(metric, dataobject):
    """The (users x max k) per-user matrix of a RecBole top-k metric."""
    pos_index, pos_len = metric.used_info(dataobject)
    if len(inspect.signature(metric.metric_info).parameters) >= 2:
        return metric.metric_info(pos_index, pos_len)
    return metric.metric_info(pos_index)


class PerUserEvaluator(Evaluator):
    """Evaluator whose ``last_per_user`` maps ``"<metric>@<k>"`` to the per-user values
    (numpy, one per evaluated user) of the last :meth:`evaluate` call."""

    def __init__(self, config):
        super().__init__(config)
        self.last_per_user = OrderedDict()

    def evaluate(self, dataobject):
        result, per_user = OrderedDict(), OrderedDict()
        for name in self.metrics:
            metric = self.metric_class[name]
            if not isinstance(metric, TopkMetric):
                result.update(metric.calculate_metric(dataobject))
                continue
            values = per_user_values(metric, dataobject)
            result.update(metric.topk_result(name, values))
            for k in metric.topk:
                per_user[f"{name}@{k}"] = values[:, k - 1]
        self.last_per_user = per_user
        return result
