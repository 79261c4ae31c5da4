"""Hyperparameter search on Optuna: one study, any number of workers, on any machines.

Every worker runs :func:`run_study` (``run_hyper_anchor.py --tool=optuna``) against the
same storage and study name; the storage hands each trial to one worker only. Each trial
is an ordinary run through :func:`recbole_anchor.quick_start.run_recbole_anchor`, so
plugin models, dataset presets and the strong-generalization protocol apply.

- Objective: the trial's best validation score (``valid_metric``; maximized when
  ``valid_metric_bigger``). Test results are recorded in the trial's user attributes
  (``test_result``) and never used for selection.
- Pruning: each validation score is reported to the trial (step = epoch); when the
  pruner says so the run ends at once and the trial is recorded as pruned. A run's last
  epoch is never pruned. Trials with ``nproc`` > 1 train in spawned processes that
  cannot reach the study, so they report only their final score and are never pruned.
- A trial that raises is recorded as failed with its one-line reason (user attribute
  ``fail_reason``) and the worker goes on. A worker killed outright leaves its trial
  running until another worker sees its heartbeat stop (``recbole_anchor.tuning.storage``),
  marks it failed and enqueues its configuration again.
- Outputs (``output_base``), rewritten after each trial this worker finishes, from all
  trials of the study: ``.trials.csv``, ``.best.yaml`` and RecBole's result file
  (``.result``); at the end also ``.history.png`` (optimization history) and
  ``.importances.png`` (parameter importances, from 2 complete trials on).
"""
import contextlib
import os
import socket
import time
import warnings

import optuna
from optuna.trial import TrialState

from recbole_anchor.errors import InvalidConfigError
from recbole_anchor.quick_start import run_recbole_anchor
from recbole_anchor.tuning.outputs import write_csv, write_result_file, write_yaml
from recbole_anchor.tuning.space import (
    config_values,
    is_grid,
    optuna_space,
    stored_values,
    suggest,
)
from recbole_anchor.tuning.storage import (
    GRACE_PERIOD,
    HEARTBEAT_INTERVAL,
    OPEN_ATTEMPTS,
    one_line,
    open_storage,
    redact,
)

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")


def run_study(
    fixed,
    space,
    n_trials,
    *,
    study_name,
    storage=None,
    sampler="tpe",
    pruner="median",
    seed=None,
    config_files=None,
    output_base=None,
    progress=print,
    result_file=None,
    heartbeat_interval=HEARTBEAT_INTERVAL,
    grace_period=GRACE_PERIOD,
    enqueue=(),
    on_result=None,
    budget=None,
    n_startup_trials=None,
):
    """Run ``n_trials`` trials of the study ``study_name`` in this worker.

    Args:
        fixed (dict): config overrides of every trial (``model``, ``dataset``,
            ``data_path``, ``seed``, ...); ``nproc`` (and ``port``) here start that
            many training processes per trial.
        space (list): ``(name, kind, value_text)`` as read from a .hyper file
            (:func:`recbole_anchor.tuning.space.read_params_file`).
        n_trials (int): this worker's share of trials.
        study_name (str): the study; created by the first worker, joined by the others.
        storage (str): database URL (``postgresql://``, ``mysql://``, ``sqlite:///``)
            or a journal file path; ``None``: SQLite file ``output_base + '.db'``.
        sampler: ``tpe`` (with Optuna's constant liar, for parallel workers),
            ``random``, ``grid`` (``choice`` parameters only), or an Optuna sampler.
        pruner: ``median``, ``hyperband``, ``none``, or an Optuna pruner.
        seed (int): the sampler's seed. Workers given the same seed draw the same
            random configurations; give each worker its own, or none.
        config_files (list of str): fixed yaml config files.
        output_base (str): path prefix of the outputs (default: ``study_name``).
        progress (callable): receives one line per trial this worker finishes.
        result_file (str): RecBole's result file (default ``output_base + '.result'``).
        heartbeat_interval, grace_period (int): seconds; see
            :mod:`recbole_anchor.tuning.storage`.
        enqueue (list of dict): configurations (config values of ``space``'s
            parameters, e.g. the defaults) to try first; one the study already holds
            (waiting, running or finished other than interrupted) is not queued again.
        on_result (callable): called as ``on_result(trial, result, seconds)`` with each
            trial this worker completes, ``result`` being its run's
            :func:`~recbole_anchor.quick_start.run_recbole_anchor` result.
        budget (int): trials of the whole study that may spend a budget, shared by
            every worker: after each trial a worker starts no more once the study's
            running and spent trials fill it, and a trial whose earlier trials already
            fill it (workers starting at the same moment) fails as over the budget,
            using none of it.
        n_startup_trials (int): TPE's random trials before it models the results
            (default: Optuna's 10).

    Returns:
        dict: ``best_params`` (config values), ``best_valid_score``,
        ``best_valid_result``, ``best_test_result`` (all ``None`` without a complete
        trial), ``n_complete``, ``n_pruned``, ``n_failed`` (the whole study, all
        workers), ``study_name`` and ``storage``.
    """
    params_space = optuna_space(space)
    fixed = dict(fixed)
    run_kwargs = {key: fixed.pop(key) for key in ("nproc", "port") if key in fixed}
    if "nproc" in run_kwargs:
        run_kwargs["nproc"] = int(run_kwargs["nproc"])
    output_base = output_base or study_name
    settings = _fixed_settings(fixed, config_files)
    files = {
        "trials": output_base + ".trials.csv",
        "best": output_base + ".best.yaml",
        "result": result_file or output_base + ".result",
        "plots": output_base,
        "target": f"validation {settings['valid_metric']}",
    }
    sampler = make_sampler(sampler, params_space, seed, n_startup_trials)
    pruner = make_pruner(pruner, settings["epochs"])
    os.makedirs(os.path.dirname(os.path.abspath(output_base)), exist_ok=True)
    storage = storage or f"sqlite:///{os.path.abspath(output_base)}.db"
    with _quiet_optuna():
        study = _create_or_load_study(
            study_name,
            open_storage(storage, heartbeat_interval, grace_period, progress),
            direction="maximize" if settings["valid_metric_bigger"] else "minimize",
            sampler=sampler,
            pruner=pruner,
        )
    for values in enqueue:
        enqueue_once(study, params_space, values)
    progress(
        f"study '{study_name}' in {redact(storage)}: {len(study.get_trials(deepcopy=False))} "
        f"trials so far; this worker runs {n_trials}"
    )
    if run_kwargs.get("nproc", 1) > 1:
        progress(
            f"note: trials train with nproc={run_kwargs['nproc']} processes and are not pruned"
        )
    objective = _Objective(fixed, params_space, config_files, settings["epochs"], run_kwargs,
                           on_result, budget)

    def after_trial(study, trial):
        progress(trial_line(trial, params_space))
        write_outputs(study, params_space, files, plots=False)
        if budget is not None and budget_filled(study.get_trials(deepcopy=False), budget):
            study.stop()

    with _quiet_optuna():
        study.optimize(objective, n_trials=n_trials, catch=(Exception,), callbacks=[after_trial])
    summary = write_outputs(study, params_space, files, plots=True, progress=progress)
    return {**summary, "study_name": study_name, "storage": storage}


#: ``fail_reason`` of a trial stopped by Ctrl-C or kill (see ``stop_signals``).
INTERRUPTED = "interrupted"
#: ``fail_reason`` prefix of a queued configuration that another trial already holds.
DUPLICATE = "duplicate of trial"
#: ``fail_reason`` prefix of a trial started when earlier ones had filled the budget.
OVER_BUDGET = "over the budget of"
#: User attribute of the trials :func:`enqueue_once` queues.
QUEUED = "queued"


def used_no_budget(trial):
    """True for a failed trial that leaves its place in the budget to another:
    interrupted (a queued configuration, such as the defaults, is queued again; a
    drawn one gives way to a new draw), a duplicate of a queued configuration, or over
    the budget."""
    reason = trial.user_attrs.get("fail_reason") or ""
    return trial.state == TrialState.FAIL and (
        reason == INTERRUPTED or reason.startswith((DUPLICATE, OVER_BUDGET)))


def spends_budget(trial):
    """True for a finished trial that counts against a budget: complete, pruned, or
    failed for a reason of its own (not interrupted, not a duplicate, and not a worker
    that died, whose configuration is queued again)."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return (trial.state == TrialState.FAIL and bool(trial.user_attrs.get("fail_reason"))
            and not used_no_budget(trial))


def enqueue_once(study, space, values):
    """Queue the configuration ``values`` unless the study holds it already (waiting,
    running, or finished other than by an interruption). Two workers that start at
    the same moment may both queue it; :func:`twin_of` then keeps one."""
    stored = stored_values(space, values)
    for trial in study.get_trials(deepcopy=False):
        if trial.params == stored and not used_no_budget(trial):
            return False
        if trial.state == TrialState.WAITING and trial.system_attrs.get("fixed_params") == stored:
            return False
    study.enqueue_trial(stored, user_attrs={QUEUED: True})
    return True


def make_sampler(sampler, space, seed=None, n_startup_trials=None):
    if not isinstance(sampler, str):
        return sampler
    if sampler == "tpe":
        startup = {} if n_startup_trials is None else {"n_startup_trials": n_startup_trials}
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True, **startup)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler == "grid":
        if not is_grid(space):
            others = [p.name for p in space if not hasattr(p.distribution, "choices")]
            raise InvalidConfigError(
                f"--sampler=grid enumerates `choice` parameters only, but {others} are not "
                "choices; use --sampler=tpe or --sampler=random"
            )
        grid = {param.name: list(param.distribution.choices) for param in space}
        return optuna.samplers.GridSampler(grid, seed=seed)
    raise InvalidConfigError(f"unknown sampler '{sampler}'; use one of {', '.join(SAMPLERS)}")


def make_pruner(pruner, epochs):
    if not isinstance(pruner, str):
        return pruner
    if pruner == "median":  # no pruning in the first 10% of the epochs nor the first 5 trials
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=epochs // 10)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, epochs))
    if pruner == "none":
        return optuna.pruners.NopPruner()
    raise InvalidConfigError(f"unknown pruner '{pruner}'; use one of {', '.join(PRUNERS)}")


class _Objective:
    """One trial: draw a configuration, train and test it, return its validation score."""

    def __init__(self, fixed, space, config_files, epochs, run_kwargs, on_result=None,
                 budget=None):
        self.fixed, self.space, self.config_files = fixed, space, config_files
        self.epochs, self.run_kwargs, self.on_result = epochs, run_kwargs, on_result
        self.budget = budget

    def __call__(self, trial):
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        started = time.time()
        try:
            params = suggest(trial, self.space)
            twin = twin_of(trial)
            if twin is not None:
                raise UnbudgetedTrial(f"{DUPLICATE} {twin}")
            if self.budget is not None and budget_filled(earlier_trials(trial), self.budget):
                raise UnbudgetedTrial(f"{OVER_BUDGET} {self.budget} trials")
            callback = None
            if self.run_kwargs.get("nproc", 1) == 1:
                callback = _pruning_callback(trial, int(params.get("epochs", self.epochs)))
            result = run_recbole_anchor(
                config_dict={**self.fixed, **params},
                config_file_list=self.config_files,
                cmd_args=[],
                callback_fn=callback,
                **self.run_kwargs,
            )
        except optuna.TrialPruned:
            raise
        except UnbudgetedTrial as err:  # failed, using none of the budget
            trial.set_user_attr("fail_reason", str(err))
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", INTERRUPTED)
            raise
        except Exception as err:  # recorded as failed; the study goes on
            trial.set_user_attr("fail_reason", one_line(err))
            raise
        trial.set_user_attr("valid_result", dict(result["best_valid_result"] or {}))
        trial.set_user_attr("test_result", dict(result["test_result"] or {}))
        if self.on_result is not None:
            self.on_result(trial, result, time.time() - started)
        return result["best_valid_score"]


class UnbudgetedTrial(Exception):
    """A trial that must not train: a queued configuration an earlier trial already
    holds, or one started when earlier trials had filled the budget."""


def budget_filled(trials, budget):
    """Whether ``trials``, running or finished spending the budget, fill ``budget``."""
    return sum(t.state == TrialState.RUNNING or spends_budget(t) for t in trials) >= budget


def earlier_trials(trial):
    """The trials of ``trial``'s study numbered below it. Numbers are given in the
    order trials start, so of workers starting at once exactly those past a budget
    find it filled by their earlier trials."""
    return [t for t in trial.study.get_trials(deepcopy=False) if t.number < trial.number]


def twin_of(trial):
    """The number of an earlier trial that holds the queued configuration of
    ``trial`` (running, complete, pruned, or failed for a reason of its own), or None.
    Sampled configurations are never checked: only queued ones can be queued twice."""
    if not trial.user_attrs.get(QUEUED):
        return None
    for other in earlier_trials(trial):
        # (a queued configuration is in the study from the moment it is taken; its
        # params only once its worker has drawn them)
        held = other.system_attrs.get("fixed_params") or other.params
        if held == trial.params and (other.state == TrialState.RUNNING or spends_budget(other)):
            return other.number
    return None


def _pruning_callback(trial, epochs):
    def callback_fn(epoch_idx, valid_score):
        trial.report(float(valid_score), epoch_idx)
        if epoch_idx + 1 < epochs and trial.should_prune():
            trial.set_user_attr("pruned_at_epoch", epoch_idx)
            raise optuna.TrialPruned(f"pruned at epoch {epoch_idx}")

    return callback_fn


def _fixed_settings(fixed, config_files):
    """``valid_metric``, ``valid_metric_bigger`` and ``epochs`` of the fixed configuration."""
    from recbole_anchor.config import Config

    config = Config(config_dict=fixed, config_file_list=config_files, cmd_args=[])
    return {
        "valid_metric": config["valid_metric"],
        "valid_metric_bigger": bool(config["valid_metric_bigger"]),
        "epochs": int(config["epochs"]),
    }


def _create_or_load_study(study_name, storage, direction, sampler, pruner):
    """Create the study, or load it when another worker created it first (also when
    both create it at once: the loser sees DuplicatedStudyError or a database error)."""
    import sqlalchemy.exc

    for attempt in range(OPEN_ATTEMPTS):
        try:
            study = optuna.create_study(
                study_name=study_name,
                storage=storage,
                direction=direction,
                sampler=sampler,
                pruner=pruner,
                load_if_exists=True,
            )
            break
        except optuna.exceptions.DuplicatedStudyError:
            study = optuna.load_study(
                study_name=study_name, storage=storage, sampler=sampler, pruner=pruner
            )
            break
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, KeyError):
            if attempt + 1 == OPEN_ATTEMPTS:
                raise
            time.sleep(0.5 * (attempt + 1))
    wanted = optuna.study.StudyDirection.MAXIMIZE if direction == "maximize" else (
        optuna.study.StudyDirection.MINIMIZE
    )
    if study.direction != wanted:
        raise InvalidConfigError(
            f"study '{study_name}' was created to {study.direction.name.lower()} the "
            f"validation score but this configuration's valid_metric_bigger asks to {direction} "
            "it; use another --study_name"
        )
    return study


@contextlib.contextmanager
def _quiet_optuna():
    """Optuna's own per-trial log lines (and failed trials' tracebacks) off: the worker
    prints one line per trial itself."""
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def trial_line(trial, space):
    """One progress line: number, state, value, parameters, reason, worker."""
    params = ", ".join(
        f"{name}={_short(value)}" for name, value in config_values(space, trial.params).items()
    )
    state = trial.state.name.lower()
    value = f" value={trial.value:.6g}" if trial.state == TrialState.COMPLETE else ""
    reason = _reason(trial)
    return f"trial {trial.number} {state}{value} {{{params}}}" + (f": {reason}" if reason else "")


def _short(value):
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


def _reason(trial):
    if trial.state == TrialState.PRUNED:
        epoch = trial.user_attrs.get("pruned_at_epoch", max(trial.intermediate_values, default=""))
        return f"pruned at epoch {epoch}"
    if trial.state == TrialState.FAIL:
        return trial.user_attrs.get("fail_reason") or "its worker stopped (no heartbeat)"
    return ""


def trial_row(trial):
    """The trials table's row of ``trial`` (parameters as Optuna stores them)."""
    row = {"number": trial.number, "state": trial.state.name.lower()}
    row["value"] = trial.value if trial.state == TrialState.COMPLETE else ""
    row.update(trial.params)
    row["last_epoch"] = max(trial.intermediate_values, default="")
    duration = trial.duration
    row["duration_s"] = round(duration.total_seconds(), 1) if duration is not None else ""
    row["worker"] = trial.user_attrs.get("worker", "")
    row["retry_of"] = trial.system_attrs.get("failed_trial", "")
    row["reason"] = _reason(trial)
    row.update({f"valid_{k}": v for k, v in trial.user_attrs.get("valid_result", {}).items()})
    row.update({f"test_{k}": v for k, v in trial.user_attrs.get("test_result", {}).items()})
    return row


def write_outputs(study, space, files, plots, progress=print):
    """Trials table, best yaml and result file (and with ``plots`` the two PNGs) of
    every trial of the study, to ``files["trials"]``, ``["best"]``, ``["result"]`` and
    ``["plots"] + '.history.png'`` / ``'.importances.png'``; the summary dict of
    :func:`run_study`."""
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.is_finished()]
    write_csv(files["trials"], [trial_row(t) for t in finished])
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    counts = {
        "n_complete": len(complete),
        "n_pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "n_failed": sum(t.state == TrialState.FAIL for t in trials),
    }
    best = {"best_params": None, "best_valid_score": None, "best_valid_result": None,
            "best_test_result": None}
    if complete:
        trial = study.best_trial
        best = {
            "best_params": config_values(space, trial.params),
            "best_valid_score": trial.value,
            "best_valid_result": trial.user_attrs.get("valid_result"),
            "best_test_result": trial.user_attrs.get("test_result"),
        }
        best_trial = trial.number
    else:
        best_trial = None
    write_yaml(
        files["best"],
        {"study_name": study.study_name, "best_trial": best_trial, **best, **counts},
    )
    write_result_file(
        files["result"],
        [
            (config_values(space, t.params), t.user_attrs.get("valid_result", {}),
             t.user_attrs.get("test_result", {}))
            for t in complete
        ],
    )
    if plots:
        write_plots(study, files["plots"], len(complete), progress, files.get("target"))
    return {**best, **counts}


def write_plots(study, output_base, n_complete, progress=print, target_name=None):
    """``.history.png`` (from 1 complete trial) and ``.importances.png`` (from 2), the
    objective named ``target_name``."""
    if n_complete < 1:
        progress("no complete trial yet: no plots")
        return
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from optuna.visualization import matplotlib as plots

    from recbole_anchor.trainer.checkpoint import atomic_open

    figures = [("history", plots.plot_optimization_history)]
    if n_complete >= 2:
        figures.append(("importances", plots.plot_param_importances))
    else:
        progress("1 complete trial: no parameter importances (they need 2)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for name, plot in figures:
            try:
                axes = plot(study, target_name=target_name or "Objective Value")
            except (ValueError, RuntimeError) as err:  # e.g. all values equal
                progress(f"no {name} plot: {one_line(err)}")
                continue
            figure = axes.figure
            figure.set_size_inches(8, 5)
            figure.tight_layout()
            with atomic_open(f"{output_base}.{name}.png", "wb") as handle:
                figure.savefig(handle, format="png", dpi=100)
            plt.close(figure)
