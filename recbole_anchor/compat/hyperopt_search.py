"""RecBole 1.2.1's exhaustive hyperparameter search on hyperopt >= 0.2.7.

It reads each ``choice`` option as a literal, so a list-valued option
(``mlp_hidden_size choice [[600],[300,300]]``) raises AttributeError (RecBole #1847),
and it hands hyperopt a ``np.random.RandomState`` where hyperopt >= 0.2.7 draws with
``np.random.Generator`` (#1868, #1081, #1240, #1320). Options are now counted, not
read, and the search draws with ``np.random.default_rng``.
"""
import numpy as np


def _choice_options(space):
    """{parameter: array of option indices} for every ``hp.choice`` in ``space``
    (RecBole's ``hyper_tuning._parameters``, for options of any type)."""
    from recbole.trainer import hyper_tuning

    parameters = {}
    nodes = list(space.values()) if isinstance(space, dict) else space
    for node in hyper_tuning._recursiveFindNodes(nodes, "switch"):
        name = node.pos_args[0].pos_args[0].obj
        parameters[name] = np.arange(len(node.pos_args) - 1)
    return parameters


def _exhaustive_search(new_ids, domain, trials, seed, nbMaxSucessiveFailures=1000):
    """RecBole's exhaustive search (after hyperopt#200): draw option combinations not
    tried yet, with a ``np.random.Generator`` as hyperopt >= 0.2.7 expects."""
    from hyperopt import pyll
    from hyperopt.base import miscs_update_idxs_vals

    def combination(vals):
        return frozenset((key, value[0] if len(value) else None) for key, value in vals.items())

    seen = {combination(trial["misc"]["vals"]) for trial in trials.trials}
    generator = np.random.default_rng(seed)
    docs = []
    for new_id in new_ids:
        for _ in range(nbMaxSucessiveFailures + 1):
            idxs, vals = pyll.rec_eval(
                domain.s_idxs_vals,
                memo={domain.s_new_ids: [new_id], domain.s_rng: generator},
            )
            if combination(vals) not in seen:
                break
        else:
            return docs  # every combination has been tried
        seen.add(combination(vals))
        misc = dict(tid=new_id, cmd=domain.cmd, workdir=domain.workdir)
        miscs_update_idxs_vals([misc], idxs, vals)
        docs.extend(trials.new_trial_docs([new_id], [None], [domain.new_result()], [misc]))
    return docs


def apply():
    from recbole.trainer import hyper_tuning

    hyper_tuning._parameters = _choice_options
    hyper_tuning.exhaustive_search = _exhaustive_search
