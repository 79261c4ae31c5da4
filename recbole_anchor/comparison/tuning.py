"""Tuning before the seeds: every model of a comparison searched with the same budget.

``run_recbole_anchor.py --model=A,B --seed=1,2,3 --tune=N`` (or a ``tune:`` block in a
config file) runs, for each model spec (variants included) and before any seed, an
Optuna study of ``N`` trials over the model's search space
``properties/hyper/<Model>.hyper``, less the keys the variant or the command line fixes
(``AnchorMultVAE[anchor_weight=0]`` tunes everything but the anchor weight).

- The first trial is the model's defaults (its yaml, the dataset preset and the
  command line), so a tuned model is never chosen worse on validation than its defaults.
  TPE draws at random until :func:`startup_trials` trials have finished, then from its
  model of the results.
- Every trial trains on the first seed's split and is scored on its validation users
  only (``valid_metric``); test results are recorded with the trial and never read
  here. The chosen values are those of the best complete trial among the study's first
  ``N`` finished trials (by trial number). Several workers sharing a study (``--storage``)
  split the ``N`` trials between them: a worker starts no trial once the study's finished
  and running trials fill the budget; two that finish at the same moment may each start
  one more, and those are not used, so every model gets ``N``.
- A model without a search space, or a variant that fixes all of it, runs at its
  defaults; the hyperparameters table says so.
- Results: ``<output_dir>/tuning/<model>.json`` (the chosen values, the budget, the
  scores), written once the study has ``N`` finished trials. A rerun with the same
  budget and space reads it and skips the search; the study itself (by default
  ``<output_dir>/tuning/<model>.db``) keeps every finished trial, so an interrupted
  search goes on where it stopped: an interrupted trial is run again, and a trial whose
  process was killed is retried once its heartbeat is stale.
- Each completed trial's run is kept as a run record
  (``<output_dir>/tuning/trial-runs/<model>__trial<N>.json``): the chosen trial trained the
  first seed's split with the chosen values, so its record is the first seed's run and
  the comparison does not train it again.
"""
import json
import math
import os
import time
import warnings

from recbole_anchor.comparison.records import run_record, safe_name
from recbole_anchor.command_line import cmd_values, parse_variant
from recbole_anchor.errors import InvalidConfigError
from recbole_anchor.resources import property_file
from recbole_anchor.trainer.checkpoint import atomic_open

#: Heartbeats of the comparison's own study file (no other worker shares it unless
#: ``--storage`` is given): a trial whose process was killed is retried after this.
PRIVATE_HEARTBEAT_INTERVAL = 10
PRIVATE_GRACE_PERIOD = 30
POLL_SECONDS = 10
#: A resumed search seeds its sampler with seed + this x the trials the study holds.
RESUME_SEED_STRIDE = 7919


def tune_settings(config_file_list=None, config_dict=None, tune=None, storage=None):
    """``{"trials": N, "storage": ..., "sampler": ..., "pruner": ...}`` from ``tune``
    and ``storage`` (the command line), else the ``tune:`` block of ``config_dict`` or
    of the last config file that has one; None when the comparison is not tuned."""
    block = (config_dict or {}).get("tune")
    if block is None:
        for path in reversed(config_file_list or []):
            block = _yaml_tune_block(path)
            if block is not None:
                break
    block = {} if block is None else block
    if not isinstance(block, dict):
        raise InvalidConfigError(f"tune: {block!r} is not a mapping; write e.g. tune: {{trials: 20}}")
    unknown = set(block) - {"trials", "storage", "sampler", "pruner"}
    if unknown:
        raise InvalidConfigError(
            f"tune: unknown keys {sorted(unknown)}; use trials, storage, sampler, pruner"
        )
    tune = block.get("trials") if tune is None else tune
    if tune is None:
        return None
    text = str(tune).strip()
    if not text.isdigit() or int(text) < 1:
        raise InvalidConfigError(f"--tune={tune}: give the trials per model, an integer >= 1")
    return {
        "trials": int(text),
        "storage": storage or block.get("storage"),
        "sampler": str(block.get("sampler", "tpe")).lower(),
        "pruner": str(block.get("pruner", "median")).lower(),
    }


def _yaml_tune_block(path):
    import yaml

    if not os.path.isfile(path):
        return None  # the Config names the missing file
    with open(path, encoding="utf-8") as handle:
        content = yaml.safe_load(handle) or {}
    return content.get("tune") if isinstance(content, dict) else None


class TuningStore:
    """Tuning records, ``<output_dir>/tuning/<model>.json``, and the study files."""

    def __init__(self, output_dir):
        self.folder = os.path.join(output_dir, "tuning")
        os.makedirs(self.folder, exist_ok=True)

    def base(self, model):
        return os.path.join(self.folder, safe_name(model))

    def read(self, model):
        path = self.base(model) + ".json"
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)

    def write(self, record):
        with atomic_open(self.base(record["model"]) + ".json", encoding="utf-8") as handle:
            json.dump(record, handle, indent=1)

    def trial_run_path(self, model, number):
        return os.path.join(self.folder, "trial-runs", f"{safe_name(model)}__trial{number}.json")

    def write_trial_run(self, record, number):
        """Keep a completed trial's run record (see ``records``): the chosen trial's is
        the first seed's run."""
        path = self.trial_run_path(record["model"], number)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_open(path, encoding="utf-8") as handle:
            json.dump(record, handle)

    def chosen_run(self, tuning, seed):
        """The run record of the chosen trial of the tuning record ``tuning`` when it
        is the run of ``seed`` with the chosen values (the same config, seed and split:
        the first seed's run), and this machine kept it; else None."""
        if tuning.get("seed") != seed or tuning.get("best_trial") is None:
            return None
        path = self.trial_run_path(tuning["model"], tuning["best_trial"])
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
        return record if record["params"] == tuning["params"] else None


def search_space(model, fixed_keys):
    """``(name, kind, text)`` lines of ``model``'s search space less ``fixed_keys``, and
    the space file's path (None, [] without one)."""
    from recbole_anchor.tuning.space import read_params_file, without_keys

    path = property_file("hyper", model, ".hyper")
    if path is None:
        return None, []
    return path, without_keys(read_params_file(path), fixed_keys)


def default_values(fixed, config_file_list, names):
    """The values the configuration ``fixed`` gives the parameters ``names``."""
    from recbole_anchor.config import Config

    config = Config(config_dict=dict(fixed), config_file_list=config_file_list, cmd_args=[])
    return {name: config[name] for name in names}


def tune_models(models, dataset, seed, settings, output_dir, config_file_list=None,
                config_dict=None, cmd_args=None, log=print):
    """Tune every model spec (see the module docstring); ``{spec: tuning record}``."""
    store = TuningStore(output_dir)
    fixed_by_user = {**(config_dict or {}), **cmd_values(cmd_args)}
    return {
        spec: tune_model(spec, dataset, seed, settings, store, config_file_list,
                         fixed_by_user, log)
        for spec in models
    }


def tune_model(spec, dataset, seed, settings, store, config_file_list, fixed_by_user, log):
    """One model's tuning record: read when it exists for this budget and space, else
    searched (or the defaults, without a space) and written."""
    name, overrides = parse_variant(spec)
    fixed_keys = set(overrides) | set(fixed_by_user)
    path, space = search_space(name, fixed_keys)
    fixed = {**fixed_by_user, "model": name, "dataset": dataset, **overrides, "seed": seed}
    wanted = {"model": spec, "trials": settings["trials"], "seed": seed,
              "space": [list(line) for line in space]}
    record = store.read(spec)
    if record is not None and all(record.get(k) == v for k, v in wanted.items()):
        log(f"[{spec}] tuned before: {record['params']}")
        return record
    if not space:
        why = (f"no search space (properties/hyper/{name}.hyper)" if path is None
               else "the variant or the command line fixes its whole search space")
        record = {**wanted, "params": {}, "note": f"defaults: {why}", "n_complete": 0,
                  "best_valid_score": None, "default_valid_score": None}
        log(f"[{spec}] not tuned: {why}")
        store.write(record)
        return record
    record = {**wanted, **search(spec, fixed, space, settings, store, config_file_list, log)}
    store.write(record)
    if record.get("note"):
        log(f"[{spec}] not tuned: {record['note']}")
        return record
    log(f"[{spec}] chose {record['params']} (validation {record['best_valid_score']:.4f}, "
        f"defaults {_score_text(record['default_valid_score'])})")
    return record


def search(spec, fixed, space, settings, store, config_file_list, log):
    """Run the study until it holds ``settings["trials"]`` finished trials, then pick
    the best complete one among the first that many; the record's fields."""
    import optuna

    from recbole_anchor.tuning.optuna_search import run_study
    from recbole_anchor.tuning.space import config_values, optuna_space
    from recbole_anchor.tuning.storage import open_storage

    budget = settings["trials"]
    base = store.base(spec)
    shared = settings.get("storage")
    storage = shared or f"sqlite:///{os.path.abspath(base)}.db"
    beats = {} if shared else {"heartbeat_interval": PRIVATE_HEARTBEAT_INTERVAL,
                               "grace_period": PRIVATE_GRACE_PERIOD}
    study_name = f"compare-{fixed['dataset']}-{spec}"
    names = [line[0] for line in space]
    defaults = default_values(fixed, config_file_list, names + ["valid_metric"])
    valid_metric = defaults.pop("valid_metric")
    opened = open_storage(storage, **beats)  # once: the loop below polls it
    params_space = optuna_space(space)

    def keep_run(trial, result, seconds):
        store.write_trial_run(run_record(spec, fixed["dataset"], fixed["seed"],
                                         config_values(params_space, trial.params),
                                         result, seconds), trial.number)

    while True:
        study = _load_study(study_name, opened)
        spent, running = _count(study.get_trials(deepcopy=False) if study else [])
        todo = budget - len(spent) - len(running)
        if todo > 0:
            # One worker: a seeded, reproducible search (a resumed one draws anew, not
            # the configurations it drew before); shared: each its own draws.
            seed = None if shared else fixed["seed"] + RESUME_SEED_STRIDE * len(
                study.get_trials(deepcopy=False) if study else [])
            run_study(
                fixed, space, todo, study_name=study_name, storage=storage,
                sampler=settings.get("sampler", "tpe"), pruner=settings.get("pruner", "median"),
                seed=seed, n_startup_trials=startup_trials(budget),
                config_files=config_file_list, output_base=base,
                progress=lambda line: log(f"[{spec}] {line}"),
                enqueue=[defaults], on_result=keep_run, budget=budget, **beats,
            )
        elif running:  # other workers' trials, or a killed process's (retried when stale)
            with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
            time.sleep(POLL_SECONDS)
        else:
            break
    first = sorted(spent, key=lambda t: t.number)[:budget]
    complete = [t for t in first if t.state.name == "COMPLETE"]
    counts = {
        "n_complete": len(complete),
        "n_pruned": sum(t.state.name == "PRUNED" for t in first),
        "n_failed": sum(t.state.name == "FAIL" for t in first),
        "study_name": study_name,
        "valid_metric": valid_metric,
        "defaults": defaults,
    }
    if not complete:  # the seeds run at the defaults, and fail or not on their own
        reasons = sorted({t.user_attrs.get("fail_reason", t.state.name.lower()) for t in first})
        return {**counts, "params": {}, "best_valid_score": None, "default_valid_score": None,
                "note": f"defaults: no trial of {budget} completed ({'; '.join(reasons)})"}
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best = (max if maximize else min)(complete, key=lambda t: t.value)
    default_trial = next(
        (t for t in complete if config_values(params_space, t.params) == defaults), None)
    return {
        **counts,
        "params": config_values(params_space, best.params),
        "best_trial": best.number,
        "best_valid_score": best.value,
        "default_valid_score": default_trial.value if default_trial is not None else None,
    }


def startup_trials(budget):
    """Trials of a ``budget`` drawn at random (the defaults first) before TPE models the
    results: all of them below 6 (too few results to model), else half, at least 5 and at
    most Optuna's default 10. With Optuna's default alone every budget up to 10 trials
    is a random search (ML-1M: 7 log-uniform draws of EASE's ``reg_weight`` over
    [10, 20000] all fell outside the good 300-1500)."""
    return budget if budget < 6 else max(5, min(10, budget // 2))


def _load_study(study_name, storage):
    """The study in the opened ``storage``, or None when it does not exist yet."""
    import optuna

    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:  # no such study in the storage yet
        return None


def _count(trials):
    """Trials that used the budget (complete, pruned, failed for a reason of their
    own) and trials running now; an interrupted trial, a queued duplicate, or one
    whose worker died (queued again), used none."""
    from recbole_anchor.tuning.optuna_search import spends_budget

    spent = [trial for trial in trials if spends_budget(trial)]
    running = [trial for trial in trials if trial.state.name == "RUNNING"]
    return spent, running


def _score_text(score):
    return "not run" if score is None or (isinstance(score, float) and math.isnan(score)) else (
        f"{score:.4f}")
