"""Run every model on every seed's split, keep each result the moment it exists, and
write the comparison tables.

All models of one seed share that seed's split: the split depends only on the seed and
the dataset settings, never on the model. A (model, seed) run that fails is recorded
with its one-line reason and the other runs go on; a rerun of the same command skips
every run that already has a record.
"""
import os
import time
import traceback
from logging import getLogger

from recbole_anchor.comparison.records import RecordStore, run_record
from recbole_anchor.comparison.report import write_report
from recbole_anchor.command_line import drop_overrides, parse_variant, split_models
from recbole_anchor.errors import RecBoleAnchorError


def default_output_dir(dataset):
    return os.path.join("results", dataset)


def run_one(model, dataset, seed, config_file_list, config_dict, cmd_args, params=None):
    """Train and test one model (or variant, ``Name[key=value]``) on one seed with the
    hyperparameters ``params`` (tuned; none: the defaults); a record (see ``records``)."""
    from recbole_anchor.quick_start import run_recbole_anchor

    params = dict(params or {})
    started = time.time()
    try:
        name, overrides = parse_variant(model)
        result = run_recbole_anchor(
            model=name,
            dataset=dataset,
            config_file_list=config_file_list,
            config_dict={**(config_dict or {}), **params, **overrides, "seed": seed},
            cmd_args=drop_overrides(cmd_args, overrides),
        )
    except (KeyboardInterrupt, SystemExit):
        raise
    except RecBoleAnchorError as err:
        return _failed(model, dataset, seed, str(err), params)
    except Exception as err:  # one failing model must not stop the comparison
        getLogger().error(traceback.format_exc())
        reason = (str(err).strip().splitlines() or [""])[0]
        return _failed(model, dataset, seed, f"{type(err).__name__}: {reason}", params)
    return run_record(model, dataset, seed, params, result, time.time() - started)


def _failed(model, dataset, seed, reason, params=None):
    return {"model": model, "dataset": dataset, "seed": seed, "params": dict(params or {}),
            "status": "failed", "reason": reason}


def activity_rows(records, models, metrics):
    """Markdown rows of the test metrics per activity group (mean over seeds), when the
    runs report them (strong generalization)."""
    groups = []
    for record in records:
        for label in record.get("activity", {}):
            if label not in groups:
                groups.append(label)
    if not groups:
        return None
    lines = ["Test results by user activity (interactions of held-out users), mean over seeds.", ""]
    lines.append("| group | model | users | " + " | ".join(metrics) + " |")
    lines.append("|---|---|---|" + "---|" * len(metrics))
    for label in groups:
        for model in models:
            runs = [r["activity"][label] for r in records
                    if r["model"] == model and r["status"] == "ok" and label in r.get("activity", {})]
            if not runs:
                continue
            cells = []
            for metric in metrics:
                values = [run[metric] for run in runs if metric in run]
                cells.append(f"{sum(values) / len(values):.4f}" if values else "–")
            users = runs[0].get("users", "")
            lines.append(f"| {label} | {model} | {users} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def check_shared_config(models, dataset, config_file_list, config_dict, cmd_args):
    """Stop before running anything when no model accepts the configuration (a shared
    mistake such as a missing dataset or an uncomputed ``valid_metric``); a model that
    alone cannot run is recorded as failed later, and the others go on."""
    from recbole_anchor.config import Config
    from recbole_anchor.data.atomic_files import check_dataset_files

    errors = []
    for spec in models:
        name, overrides = parse_variant(spec)
        try:
            check_dataset_files(Config(name, dataset, config_file_list,
                                       {**(config_dict or {}), **overrides},
                                       drop_overrides(cmd_args, overrides)))
        except RecBoleAnchorError as err:
            errors.append(err)
    if len(errors) == len(models):
        raise errors[0]


def baseline_list(baseline, models):
    """The baselines of a comparison: ``baseline`` (a spec, ``"A,B"`` or a list) or by
    default the second model (the first when it is the only one); each must be a model."""
    if baseline is None:
        return [models[1] if len(models) > 1 else models[0]]
    baselines = split_models(baseline) if isinstance(baseline, str) else list(baseline)
    for name in baselines:
        if name not in models:
            raise RecBoleAnchorError(
                f"baseline '{name}' is not among the models {models}; pick one with --baseline"
            )
    return baselines


def ran_with(record, params, tuned=None):
    """Whether a finished run's ``record`` used ``params``: the same values, or an
    untuned run (at the defaults) when tuning ``tuned`` chose exactly the defaults."""
    ran = record.get("params") or {}
    return ran == params or (not ran and bool(tuned) and params == tuned.get("defaults"))


def run_comparison(models, seeds, dataset, output_dir=None, baseline=None,
                   config_file_list=None, config_dict=None, cmd_args=None, log=print,
                   tune=None, storage=None):
    """Run ``models`` x ``seeds`` on ``dataset`` (skipping finished runs) and write
    ``comparison.csv``, ``.md``, ``.tex``, ``.png`` and ``hyperparameters.csv`` into
    ``output_dir``.

    ``baseline`` (default: the second model, else the first) is the reference of the
    paired significance tests: a model spec, or several (a list, or one string
    ``"A,B"``), each with its own table (e.g. AnchorMultVAE against its
    ``[anchor_weight=0]`` variant and AnchorRecVAE against RecVAE in one comparison). ``tune`` (trials per model; default: the ``tune:``
    block of the configuration, else none) tunes every model on the first seed's
    validation users before the seeds (:mod:`recbole_anchor.comparison.tuning`), its
    studies in ``storage`` (a database URL or journal file shared by many machines;
    default: files in ``output_dir/tuning``). A finished run whose record holds other
    hyperparameters than the ones chosen now is run again; the first seed's run with
    the chosen values is the chosen trial's own run, whose record is used when this
    machine ran it. Returns the written paths.
    """
    from recbole_anchor.comparison.tuning import TuningStore, tune_models, tune_settings

    output_dir = output_dir or default_output_dir(dataset)
    baselines = baseline_list(baseline, models)
    check_shared_config(models, dataset, config_file_list, config_dict, cmd_args)
    settings = tune_settings(config_file_list, config_dict, tune, storage)
    tuning = None
    if settings is not None:
        log(f"tuning every model with {settings['trials']} trials on seed {seeds[0]}'s "
            "validation users")
        tuning = tune_models(models, dataset, seeds[0], settings, output_dir,
                             config_file_list, config_dict, cmd_args, log)
    store = RecordStore(output_dir)
    tuning_runs = TuningStore(output_dir) if tuning else None
    for seed in seeds:
        for model in models:
            params = tuning[model]["params"] if tuning else {}
            if store.has(model, seed):
                if ran_with(store.read(model, seed), params, tuning and tuning[model]):
                    log(f"[{model}, seed {seed}] done before, skipped")
                    continue
                log(f"[{model}, seed {seed}] done before with other hyperparameters: run again")
            record = tuning_runs.chosen_run(tuning[model], seed) if tuning else None
            if record is not None:
                log(f"[{model}, seed {seed}] the same run as tuning trial "
                    f"{tuning[model]['best_trial']}: its record is used")
            else:
                log(f"[{model}, seed {seed}] running")
                record = run_one(model, dataset, seed, config_file_list, config_dict,
                                 cmd_args, params)
            store.write(record)
            log(f"[{model}, seed {seed}] {record['status']} {record.get('reason', '')}".rstrip())
    records = [store.read(model, seed) for seed in seeds for model in models]
    metrics = []
    for record in records:
        metrics += [m for m in record.get("test", {}) if m not in metrics]
    title = f"{dataset}: {', '.join(models)}"
    return write_report(output_dir, records, models, metrics, baselines, title,
                        activity_rows(records, models, metrics), tuning)
