"""Train and test any model, plugin or RecBole, the way RecBole's quick start does."""
import logging
import sys
from collections import OrderedDict
from logging import getLogger

import torch
from recbole.data.transform import construct_transform
from recbole.utils import get_environment, get_flops, init_logger, init_seed, set_color

from recbole_anchor.compat.weights_only_checkpoints import load_checkpoint, load_weights
from recbole_anchor.config import Config
from recbole_anchor.data.atomic_files import check_dataset_files
from recbole_anchor.data.loading import create_dataset, data_preparation
from recbole_anchor.data.strong_generalization import (
    StrongGeneralizationDataset,
    is_strong_generalization,
)
from recbole_anchor.evaluator.activity import evaluate_by_activity, format_activity_table
from recbole_anchor.evaluator.per_user import PerUserEvaluator
from recbole_anchor.model.fold_in import check_fold_in_support
from recbole_anchor.registry import build_model, get_trainer
from recbole_anchor.trainer.memory import apply_memory_settings


def run_recbole_anchor(
    model=None,
    dataset=None,
    config_file_list=None,
    config_dict=None,
    saved=True,
    cmd_args=None,
    resume=None,
    trust_checkpoint=False,
    nproc=1,
    world_size=-1,
    ip="localhost",
    port="5678",
    group_offset=0,
    queue=None,
    callback_fn=None,
    results_on_console=True,
):
    r"""Train ``model`` on ``dataset``, then test it; RecBole's ``run_recbole`` (and,
    with ``nproc`` > 1 or ``world_size`` > 0, RecBole's multi-process ``run``) for
    plugin and RecBole models alike.

    Args:
        model (str): model name, e.g. ``"AnchorMultVAE"`` or any RecBole model.
        dataset (str): dataset name; its atomic files are read from
            ``data_path/<dataset>/`` (``ml-100k`` falls back to RecBole's bundled copy).
        config_file_list (list of str): yaml config files.
        config_dict (dict): config overrides.
        saved (bool): save the best checkpoint and test it.
        cmd_args (list of str): ``--key=value`` overrides; ``None`` reads ``sys.argv``
            like RecBole.
        resume (str): a checkpoint to continue training from; give the config of the
            run that wrote it. ``<run>-last.pth`` (written after every epoch) continues
            exactly where that run was; the run keeps writing its checkpoints there.
        trust_checkpoint (bool): also load checkpoints written by plain RecBole, which
            pickle objects (loading them runs code stored in the file).
        nproc (int): processes to start on this machine for data-parallel training
            (RecBole's ``--nproc``): each trains on its share of every batch and
            evaluates its share of the users; gradients and metrics are averaged
            (RecBole's DDP). nccl on CUDA, gloo on the CPU.
        world_size (int): processes in the whole group, on all machines (-1: ``nproc``).
        ip, port: address of process 0 for the group to meet at.
        group_offset (int): rank of this machine's first process in the group.
        queue: where process 0 of a multi-process run puts its result (internal).
        callback_fn (callable): ``callback_fn(epoch_idx, valid_score)`` after each
            validation, as RecBole's ``Trainer.fit`` calls it (an exception it raises
            ends the run; tuning uses it to prune trials); single-process runs only.
        results_on_console (bool): also log the final results to the console (they
            always go to the log file); the command line prints them itself.

    Returns:
        dict: ``best_valid_score``, ``valid_score_bigger``, ``best_valid_result`` and
        ``test_result``, as RecBole's ``run_recbole`` returns; ``test_per_user``, each
        top-k test metric's value per test user in the test loader's user order; and
        under the SG split ``activity_result``, the test metrics per group of users by
        activity. In a multi-process run the result is process 0's: the metrics of
        all users, ``test_per_user`` of its share of the users only, and no
        ``activity_result``.
    """
    if nproc > 1 or world_size > 0:
        if callback_fn is not None:
            raise ValueError("callback_fn works in single-process runs only (nproc=1)")
        return _run_processes(
            dict(
                model=model,
                dataset=dataset,
                config_file_list=config_file_list,
                config_dict=config_dict,
                saved=saved,
                cmd_args=[] if cmd_args is None else cmd_args,
                resume=resume,
                trust_checkpoint=trust_checkpoint,
                results_on_console=results_on_console,
            ),
            nproc,
            world_size,
            ip,
            port,
            group_offset,
        )
    config = Config(
        model=model,
        dataset=dataset,
        config_file_list=config_file_list,
        config_dict=config_dict,
        cmd_args=cmd_args,
    )
    check_dataset_files(config)
    if is_strong_generalization(config):
        check_fold_in_support(config)  # before any logging: a one-line refusal
    resume_state = None
    if resume is not None:
        resume_state = load_checkpoint(resume, map_location=config["device"],
                                       trust_checkpoint=trust_checkpoint)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    if not results_on_console:
        _keep_results_off_console(logger)
    logger.info(sys.argv)
    logger.info(config)

    apply_memory_settings(config)
    dataset = create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)

    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = build_model(config, train_data._dataset)
    logger.info(model)
    transform = construct_transform(config)
    flops = get_flops(model, dataset, config["device"], logger, transform)
    logger.info(set_color("FLOPs", "blue") + f": {flops}")

    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    if resume_state is not None:
        trainer.resume_checkpoint(resume, state=resume_state)
    # Only when given: RecBole's DecisionTreeTrainer.fit takes no callback_fn.
    fit_kwargs = {} if callback_fn is None else {"callback_fn": callback_fn}
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=saved, show_progress=config["show_progress"], **fit_kwargs
    )
    if not config["single_spec"]:
        torch.distributed.barrier()  # process 0 has written the best checkpoint
    trainer.evaluator = PerUserEvaluator(config)  # same means, per-user values kept
    test_result = trainer.evaluate(
        test_data, load_best_model=saved, show_progress=config["show_progress"]
    )

    logger.info(
        "The running environment of this training is as follows:\n"
        + get_environment(config).draw()
    )
    best_valid_result, test_result = _plain(best_valid_result), _plain(test_result)
    logger.info(
        set_color("best valid ", "yellow") + f": {dict(best_valid_result or {})}", extra=_RESULT
    )
    logger.info(set_color("test result", "yellow") + f": {dict(test_result or {})}", extra=_RESULT)
    result = {
        "best_valid_score": float(best_valid_score),
        "valid_score_bigger": config["valid_metric_bigger"],
        "best_valid_result": best_valid_result,
        "test_result": test_result,
        "test_per_user": {
            metric: values.tolist() for metric, values in trainer.evaluator.last_per_user.items()
        },
    }
    if (
        isinstance(dataset, StrongGeneralizationDataset)
        and hasattr(test_data, "uid_list")
        and config["single_spec"]  # a process of several holds its share of users only
    ):
        result["activity_result"] = evaluate_by_activity(test_data, result["test_per_user"])
        logger.info(format_activity_table(result["activity_result"]), extra=_RESULT)
    if not config["single_spec"]:
        torch.distributed.destroy_process_group()
        if config["local_rank"] == 0 and queue is not None:
            queue.put(result)
    return result


def load_data_and_model(model_file, trust_checkpoint=False):
    r"""Load a checkpoint and rebuild its config, dataset, loaders and model; RecBole's
    ``load_data_and_model`` for plugin and RecBole models alike (installed in its place
    by ``import recbole_anchor``), reading the checkpoint weights-only.

    Args:
        model_file (str): a checkpoint written by a run (``saved/<Model>-....pth``).
        trust_checkpoint (bool): also load a checkpoint written by plain RecBole, which
            pickles objects (loading it runs code stored in the file).

    Returns:
        tuple: ``(config, model, dataset, train_data, valid_data, test_data)``.
    """
    state = load_checkpoint(model_file, map_location="cpu", trust_checkpoint=trust_checkpoint)
    config = Config.from_dict(state["config"])
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    logger = getLogger()
    logger.info(config)
    dataset = create_dataset(config)
    logger.info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"], config["reproducibility"])
    model = build_model(config, train_data._dataset)
    load_weights(model, state)
    return config, model, dataset, train_data, valid_data, test_data


def _run_processes(kwargs, nproc, world_size, ip, port, group_offset):
    """RecBole's ``run`` for ``nproc`` > 1: spawn the processes of this machine, each
    running :func:`run_recbole_anchor` with its ``local_rank``; process 0's result."""
    import torch.multiprocessing as mp

    queue = mp.get_context("spawn").SimpleQueue()
    config_dict = dict(kwargs["config_dict"] or {})
    config_dict.update(
        world_size=nproc if world_size == -1 else world_size,
        ip=ip,
        port=port,
        nproc=nproc,
        offset=group_offset,
    )
    kwargs = {**kwargs, "config_dict": config_dict, "queue": queue}
    mp.spawn(run_rank, args=(kwargs,), nprocs=nproc, join=True)
    return None if queue.empty() else queue.get()


def run_rank(rank, kwargs):
    """Spawn target: :func:`run_recbole_anchor` as process ``rank`` of this machine
    (RecBole's ``run_recboles`` builds RecBole's Config, which knows no plugin model)."""
    config_dict = {**kwargs["config_dict"], "local_rank": rank}
    run_recbole_anchor(**{**kwargs, "config_dict": config_dict})


#: ``extra`` of the log records that hold a run's final results.
_RESULT = {"final_result": True}


def _keep_results_off_console(logger):
    """Drop the final-result records from the console handlers (not the log file)."""
    for handler in logger.handlers:
        if type(handler) is logging.StreamHandler:
            handler.addFilter(lambda record: not getattr(record, "final_result", False))


def _plain(result):
    """Metric values as Python floats (RecBole returns numpy scalars)."""
    if result is None:
        return None
    return OrderedDict((key, float(value)) for key, value in result.items())
