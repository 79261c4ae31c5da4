"""One-process search with RecBole's ``HyperTuning`` (hyperopt), for plugin and RecBole models.

Each trial trains and tests one configuration through :class:`recbole_anchor.config.Config`,
so plugin models get their defaults and presets. A trial that fails is recorded with
its one-line reason and the search goes on. Every finished trial is appended to a CSV
table at once, so an interrupted search keeps what it finished.
"""
from recbole.trainer.hyper_tuning import HyperTuning

from recbole_anchor.errors import InvalidConfigError
from recbole_anchor.quick_start import run_recbole_anchor
from recbole_anchor.tuning.outputs import write_csv, write_yaml

ALGOS = ("exhaustive", "random", "bayes")


def as_lists(value):
    """hyperopt hands list-valued choices back as tuples; RecBole models want lists."""
    if isinstance(value, (list, tuple)):
        return [as_lists(v) for v in value]
    if isinstance(value, dict):
        return {key: as_lists(v) for key, v in value.items()}
    return value


def objective_function(config_dict=None, config_file_list=None, saved=True):
    """Train and test one configuration; RecBole's ``objective_function`` through the
    plugin's quick start (so plugin models, presets and the SG protocol apply), without
    Ray's ``tune.report``."""
    result = run_recbole_anchor(
        config_dict=config_dict, config_file_list=config_file_list, saved=saved, cmd_args=[]
    )
    return {
        "model": (config_dict or {}).get("model", ""),
        "best_valid_score": result["best_valid_score"],
        "valid_score_bigger": result["valid_score_bigger"],
        "best_valid_result": dict(result["best_valid_result"] or {}),
        "test_result": dict(result["test_result"] or {}),
    }


def check_exhaustive_space(space):
    """Exhaustive search enumerates ``choice`` parameters only."""
    from hyperopt.pyll.base import as_apply, dfs

    # hp.choice is hyperopt_param(name, randint(n)); anything else cannot be enumerated.
    others = sorted(
        {
            node.pos_args[0].obj
            for node in dfs(as_apply(space))
            if node.name == "hyperopt_param" and node.pos_args[1].name != "randint"
        }
    )
    if others:
        raise InvalidConfigError(
            f"exhaustive search enumerates `choice` parameters only, but {others} are "
            "not choices; use --algo=random or --algo=bayes"
        )


class AnchorHyperTuning(HyperTuning):
    """RecBole's HyperTuning that survives failed trials and logs every trial.

    Args:
        trials_file (str): CSV file that receives one row per finished trial
            (parameters, status, reason, validation score, test metrics).
        others: as RecBole's ``HyperTuning``.
    """

    def __init__(self, objective_function, trials_file=None, **kwargs):
        super().__init__(objective_function, **kwargs)
        self.trials_file = trials_file
        self.trials = []

    def trial(self, params):
        import hyperopt

        params = as_lists(params)
        try:
            outcome = super().trial(params)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as err:  # a failed trial must not end the search
            reason = (str(err).strip().splitlines() or [""])[0]
            self._record(params, "failed", f"{type(err).__name__}: {reason}", None)
            print(f"trial failed: {type(err).__name__}: {reason}")
            return {"status": hyperopt.STATUS_FAIL, "loss": None}
        self._record(params, "ok", "", self.params2result[self.params2str(params)])
        return outcome

    def _record(self, params, status, reason, result):
        row = {"trial": len(self.trials) + 1, **{k: repr(v) for k, v in params.items()}}
        row.update(status=status, reason=reason)
        if result is not None:
            row["best_valid_score"] = result["best_valid_score"]
            row.update({f"test_{k}": v for k, v in result["test_result"].items()})
        self.trials.append(row)
        if self.trials_file:
            write_csv(self.trials_file, self.trials)

    def export_best(self, path):
        """Write the best parameters and their results as yaml."""
        best = None
        if self.best_params is not None:
            result = self.params2result[self.params2str(self.best_params)]
            best = {
                "best_params": as_lists(self.best_params),
                "best_valid_score": result["best_valid_score"],
                "best_valid_result": result["best_valid_result"],
                "test_result": result["test_result"],
            }
        write_yaml(path, best or {"best_params": None})

