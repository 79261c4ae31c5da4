"""Every workaround for RecBole 1.2.1 on today's Python stack, in one place.

RecBole 1.2.1 is the last release and is unmaintained. ``apply()`` (called once on
``import recbole_anchor``) patches it so that it runs on numpy 2, torch >= 2.6 and
setuptools >= 81, and so that RecBole's own helpers know the plugin's models. Each
patch names the upstream problem it works around and has a test in
``tests/test_compat.py`` (patches 8 to 11: ``tests/test_reliability.py``; 7: ``tests/test_tuning.py``;
14: ``tests/test_distributed.py``). Nothing
here disables torch's weights-only loading process-wide or pins numpy below 2.

Patches:

1. ``numpy_aliases``: ``Config.compatibility_settings`` assigns ``np.float_``,
   ``np.complex_`` and ``np.unicode_``, which numpy 2 removed, so every ``Config()``
   raises AttributeError (RecBole #2215, #2174, #2162). Replaced by a version that only
   adds the aliases RecBole's code still uses (``np.long``, ``np.bool``, ...) when
   numpy lacks them.
2. ``lazy_ray``: ``recbole.quick_start`` does ``from ray import tune`` at import time;
   RecBole's pinned Ray 2.6.3 imports ``pkg_resources`` (gone in setuptools >= 81) and
   ``np.bool8`` (gone in numpy 2), so ``import recbole.quick_start`` fails (#2215, PR
   #2078). The module is imported with a stand-in ``ray.tune`` that imports the real
   one on first use, so only hyperparameter tuning with Ray needs a working Ray.
3. ``weights_only_checkpoints``: torch >= 2.6 loads with ``weights_only=True`` by
   default and RecBole's checkpoints pickle the whole Config object, so
   ``evaluate(load_best_model=True)``, ``resume_checkpoint`` and
   ``load_data_and_model`` fail (#2212, #2215). Trainers now write checkpoints whose
   config is plain data (``recbole_anchor.checkpoint``) and read them back with
   ``weights_only=True``.
4. ``autoencoder_dataloader``: ``recbole.data.utils.get_dataloader`` gives the per-user
   training loader only to the autoencoders named in a hard-coded table; any other
   model, a plugin autoencoder included, silently gets the per-interaction loader with
   negative sampling. Every subclass of RecBole's ``AutoEncoderMixin`` now gets the
   per-user loader.
5. ``model_lookup``: ``recbole.utils.get_model`` only searches ``recbole.model``. It now
   asks the plugin first, so RecBole's own helpers resolve plugin model names.
6. ``pandas3_features``: three places where pandas 3 changed what RecBole's feature
   loading does (no upstream issue; RecBole predates pandas 3). ``Dataset._fill_nan``
   fills missing values with ``feat[field].fillna(..., inplace=True)``, which
   Copy-on-Write turns into a silent no-op, so missing token and float feature values
   stay NaN: replaced by column assignment. The same no-op in ``Dataset._load_feat``
   (before splitting ``token_seq``/``float_seq`` cells) made a missing sequence value
   raise ``AttributeError: 'float' object has no attribute 'split'``: the tables it
   reads now come with missing sequence cells already empty. ``Dataset._remap`` splits
   the remapped IDs of a ``token_seq`` field at ``feat[field].agg(len)``, which pandas
   3 evaluates as the length of the whole column, so loading any ``token_seq`` feature
   raised ``ValueError: Length of values (1) does not match length of index``: it now
   takes each cell's length (``map(len)``).
7. ``hyperopt_search``: RecBole's exhaustive search reads each ``choice`` option as a
   literal, so a list-valued option (``mlp_hidden_size choice [[600],[300,300]]``)
   raises AttributeError (#1847), and it hands hyperopt >= 0.2.7 a
   ``np.random.RandomState`` where hyperopt now draws with ``np.random.Generator``
   (#1868, #1081, #1240, #1320). Options are now counted, not read, and the search
   uses ``np.random.default_rng``.
8. ``unique_run_files``: ``Trainer.__init__`` names the checkpoint
   ``<Model>-<time to the second>.pth``, so two runs started in the same second write
   the same file (no upstream issue). A random part from the OS is added.
9. ``resumable_training``: ``Trainer.fit`` saves only the best model, and
   ``resume_checkpoint`` restores no random generator, so a killed run can neither
   continue from its last epoch nor repeat the numbers of an uninterrupted one (no
   upstream issue). The trainer now writes ``<run>-last.pth`` whenever an epoch
   (training, validation, early-stopping bookkeeping) has finished, and a resumed
   trainer restores every random generator, the training loader's shuffling
   generator included, where it was captured: at the start of the next epoch.
10. ``finite_loss_check``: ``Trainer._check_nan`` misses an infinite loss and raises a
   bare ``ValueError("Training loss is nan")`` naming neither epoch nor step. It now
   raises :class:`~recbole_anchor.errors.TrainingDivergedError` for NaN and Inf,
   before the bad step changes the weights, naming the epoch, the step and the last
   good checkpoint, which is never overwritten by non-finite weights.
11. ``race_free_dirs``: ``recbole.utils.ensure_dir`` checks for a folder, then creates
    it, so of two runs started at once one can fail with ``FileExistsError``
    (no upstream issue). It now creates folders with ``exist_ok=True``.
12. ``plugin_metrics``: RecBole's metric registry (``recbole.evaluator.register``) is
    built once from ``recbole.evaluator.metrics`` and has no way to add a metric. The
    classes of ``recbole_anchor.evaluator.metrics`` (``TruncRecall``) are added to
    its tables, so ``metrics``, ``topk`` and ``valid_metric`` accept them.
13. ``trend_aware_stopping``: RecBole's early stopping (``recbole.utils.early_stopping``)
    ends a run ``stopping_step`` evaluations after the best score, even while the
    score is still rising on a noisy validation set. A stop is now held back while the
    least-squares slope of the last ``3 * stopping_step`` validation scores still
    points the better way; on a plateau or a decline RecBole's rule applies unchanged.
    A stop is held back by raising ``stopping_step`` for that evaluation, so
    ``cur_step`` still counts the evaluations since the best and RecBole's closing
    "best eval result in epoch N" stays right; the scores so far are saved in
    checkpoints, so a resumed run applies the rule to the same history.
14. ``weights_only_pretrain_checkpoints``: ``PretrainTrainer.save_pretrained_model``
    (RaCT's and S3Rec's pre-training stages) pickles the Config too, so the following
    stage's ``torch.load(pre_model_path)`` and ``evaluate(load_best_model=True)``
    fail on torch >= 2.6 (#2212). Pre-trained models are now written like every other
    checkpoint (plain config, atomic).
15. ``cpu_distributed``: RecBole's multi-process training (``nproc``, ``world_size``,
    ``ip``, ``port``) only runs on CUDA: ``Config._init_device`` hard-codes the nccl
    backend and asserts one ``gpu_id`` per process, and ``AbstractTrainer`` wraps the
    model in ``DistributedDataParallel`` with ``device_ids=[local_rank]``, which torch
    refuses for a CPU model (no upstream issue). Without CUDA the processes now join a
    gloo group on the CPU and DDP gets no device IDs. DDP no longer re-broadcasts
    buffers before every forward (a plugin model keeps its whole CSR training matrix in
    buffers; they are equal on every process after DDP's initial sync), and every
    process uses process 0's checkpoint name (patch 8 draws a random one per process,
    and only process 0 writes it).
"""
import contextlib
import importlib
import inspect
import os
import sys
import types

import numpy as np
import pandas as pd
import torch

import recbole.utils
import recbole.utils.utils
from recbole.config import configurator
from recbole.model.abstract_recommender import AutoEncoderMixin

from recbole_anchor import checkpoint, rng_state
from recbole_anchor.errors import TrainingDivergedError

#: RecBole's own model lookup, kept before ``model_lookup`` replaces it.
recbole_get_model = recbole.utils.utils.get_model

_APPLIED = []

# Aliases RecBole 1.2.1 assigns in Config.compatibility_settings, mapped to types
# that exist in numpy 1.x and 2.x alike.
_NUMPY_ALIASES = {
    "bool": np.bool_,
    "int": np.int_,
    "float": np.float64,
    "complex": np.complex128,
    "object": np.object_,
    "str": np.str_,
    "long": np.int_,
    "unicode": np.str_,
}


def _numpy_compatibility_settings(self):
    """numpy-2-safe stand-in for ``Config.compatibility_settings``."""
    for name, dtype in _NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, dtype)


def numpy_aliases():
    configurator.Config.compatibility_settings = _numpy_compatibility_settings


class _LazyRayTune(types.ModuleType):
    """Stand-in for ``ray.tune`` that imports the real module on first attribute use."""

    def __getattr__(self, name):
        sys.modules.pop("ray", None)
        sys.modules.pop("ray.tune", None)
        try:
            real = importlib.import_module("ray.tune")
        except Exception as err:  # ImportError, or Ray's own AttributeError on numpy 2
            raise ImportError(
                f"Ray Tune is not usable here ({type(err).__name__}: {err}); "
                "install a Ray that runs on this Python stack, or tune with "
                "run_hyper_anchor.py --tool=optuna"
            ) from None
        return getattr(real, name)


@contextlib.contextmanager
def _stand_in_ray():
    saved = {name: sys.modules.get(name) for name in ("ray", "ray.tune")}
    ray = types.ModuleType("ray")
    ray.tune = _LazyRayTune("ray.tune")
    sys.modules["ray"], sys.modules["ray.tune"] = ray, ray.tune
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def lazy_ray():
    if "recbole.quick_start.quick_start" in sys.modules:
        return
    if "ray" in sys.modules and "ray.tune" in sys.modules:
        importlib.import_module("recbole.quick_start")
        return
    with _stand_in_ray():
        importlib.import_module("recbole.quick_start")


def weights_only_checkpoints(config_from_dict):
    """``config_from_dict(plain_dict)`` rebuilds a Config from a checkpoint's config."""
    from recbole.trainer import trainer as trainer_module

    trainer_cls = trainer_module.Trainer
    recbole_evaluate = trainer_cls.evaluate

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return
        saved_model_file = kwargs.pop("saved_model_file", self.saved_model_file)
        checkpoint.save_trainer_checkpoint(self, epoch, saved_model_file)
        if verbose:
            self.logger.info(f"Saving current: {saved_model_file}")

    def resume_checkpoint(self, resume_file, trust_checkpoint=False, state=None):
        """Continue from ``resume_file`` (``state``: that file, already loaded)."""
        resume_file = str(resume_file)
        if state is None:
            state = checkpoint.load_checkpoint(
                resume_file, map_location=self.device, trust_checkpoint=trust_checkpoint
            )
        checkpoint.restore_trainer_state(self, state, path=resume_file)
        self.logger.info(
            f"Checkpoint loaded. Resume training from epoch {self.start_epoch}"
        )

    def evaluate(
        self, eval_data, load_best_model=True, model_file=None, show_progress=False
    ):
        if eval_data and load_best_model:
            checkpoint_file = model_file or self.saved_model_file
            state = checkpoint.load_checkpoint(checkpoint_file, map_location=self.device)
            self.model.load_state_dict(state["state_dict"])
            self.model.load_other_parameter(state.get("other_parameter"))
            self.logger.info(
                f"Loading model structure and parameters from {checkpoint_file}"
            )
        return recbole_evaluate(
            self, eval_data, load_best_model=False, show_progress=show_progress
        )

    evaluate.__doc__ = recbole_evaluate.__doc__
    trainer_cls._save_checkpoint = _save_checkpoint
    trainer_cls.resume_checkpoint = resume_checkpoint
    trainer_cls.evaluate = evaluate

    quick_start_module = importlib.import_module("recbole.quick_start.quick_start")

    def load_data_and_model(model_file, trust_checkpoint=False):
        state = checkpoint.load_checkpoint(
            model_file, map_location="cpu", trust_checkpoint=trust_checkpoint
        )
        config = config_from_dict(state["config"])
        qs = quick_start_module
        qs.init_seed(config["seed"], config["reproducibility"])
        qs.init_logger(config)
        logger = qs.getLogger()
        logger.info(config)
        from recbole_anchor.data.loading import create_dataset, data_preparation
        from recbole_anchor.model.fold_in import build_model

        dataset = create_dataset(config)
        logger.info(dataset)
        train_data, valid_data, test_data = data_preparation(config, dataset)
        qs.init_seed(config["seed"], config["reproducibility"])
        model = build_model(config, train_data._dataset)
        model.load_state_dict(state["state_dict"])
        model.load_other_parameter(state.get("other_parameter"))
        return config, model, dataset, train_data, valid_data, test_data

    load_data_and_model.__doc__ = quick_start_module.load_data_and_model.__doc__
    quick_start_module.load_data_and_model = load_data_and_model
    importlib.import_module("recbole.quick_start").load_data_and_model = (
        load_data_and_model
    )


def weights_only_pretrain_checkpoints():
    from recbole.trainer.trainer import PretrainTrainer

    recbole_save = PretrainTrainer.save_pretrained_model

    def save_pretrained_model(self, epoch, saved_model_file):
        checkpoint.atomic_save(
            {
                "config": checkpoint.config_to_plain(self.config),
                "epoch": epoch,
                "state_dict": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "other_parameter": checkpoint.encode_arrays(self.model.other_parameter()),
            },
            saved_model_file,
        )
        self.saved_model_file = saved_model_file

    save_pretrained_model.__doc__ = recbole_save.__doc__
    PretrainTrainer.save_pretrained_model = save_pretrained_model


def autoencoder_dataloader():
    from recbole.data import utils as data_utils

    recbole_get_dataloader = data_utils.get_dataloader

    def get_dataloader(config, phase):
        model_class = getattr(config, "model_class", None)
        if model_class is None:
            model_class = recbole.utils.get_model(config["model"])
        if isinstance(model_class, type) and issubclass(model_class, AutoEncoderMixin):
            return data_utils._get_AE_dataloader(config, phase)
        return recbole_get_dataloader(config, phase)

    get_dataloader.__doc__ = recbole_get_dataloader.__doc__
    data_utils.get_dataloader = get_dataloader
    importlib.import_module("recbole.data").get_dataloader = get_dataloader


def _fill_nan(self):
    """Missing token values become 0 ([PAD]); missing float values the field's mean;
    missing sequences empty arrays (RecBole's ``Dataset._fill_nan``, pandas-3-safe)."""
    from recbole.utils.enum_type import FeatureType

    for feat_name in self.feat_name_list:
        feat = getattr(self, feat_name)
        for field in feat:
            ftype = self.field2type[field]
            if ftype == FeatureType.TOKEN:
                feat[field] = feat[field].fillna(value=0)
            elif ftype == FeatureType.FLOAT:
                feat[field] = feat[field].fillna(value=feat[field].mean())
            else:
                dtype = np.int64 if ftype == FeatureType.TOKEN_SEQ else np.float64
                feat[field] = feat[field].apply(
                    lambda x: np.array([], dtype=dtype) if isinstance(x, float) else x
                )


class _PandasEmptySeqCells:
    """``pandas`` as ``recbole.data.dataset.dataset`` sees it, except that ``read_csv``
    returns missing cells of ``*_seq`` columns (headers ``name:token_seq``,
    ``name:float_seq``) as empty strings, the value ``_load_feat`` means to fill in."""

    def __getattr__(self, name):
        return getattr(pd, name)

    @staticmethod
    def read_csv(*args, **kwargs):
        table = pd.read_csv(*args, **kwargs)
        for column in table.columns:
            if str(column).endswith("_seq"):
                table[column] = table[column].fillna("")
        return table


def _remap(self, remap_list):
    """RecBole's ``Dataset._remap`` (token IDs to consecutive integers, one
    ``pd.factorize`` over all fields that share them), with each ``token_seq`` cell
    split at its own length (``map(len)``; pandas 3's ``agg(len)`` is the column's)."""
    from recbole.utils.enum_type import FeatureType

    if len(remap_list) == 0:
        return
    tokens, split_point = self._concat_remaped_tokens(remap_list)
    new_ids_list, mp = pd.factorize(tokens)
    new_ids_list = np.split(new_ids_list + 1, split_point)
    mp = np.array(["[PAD]"] + list(mp))
    token_id = {t: i for i, t in enumerate(mp)}
    for (feat, field, ftype), new_ids in zip(remap_list, new_ids_list):
        if field not in self.field2id_token:
            self.field2id_token[field] = mp
            self.field2token_id[field] = token_id
        if ftype == FeatureType.TOKEN:
            feat[field] = new_ids
        elif ftype == FeatureType.TOKEN_SEQ:
            lengths = feat[field].map(len).to_numpy()
            feat[field] = np.split(new_ids, np.cumsum(lengths)[:-1])


def pandas3_features():
    from recbole.data.dataset import dataset as dataset_module

    dataset_module.Dataset._fill_nan = _fill_nan
    dataset_module.Dataset._remap = _remap
    dataset_module.pd = _PandasEmptySeqCells()


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


def hyperopt_search():
    from recbole.trainer import hyper_tuning

    hyper_tuning._parameters = _choice_options
    hyper_tuning.exhaustive_search = _exhaustive_search


def model_lookup(find_plugin_model):
    """Make RecBole's ``get_model`` try ``find_plugin_model(name)`` first."""

    def get_model(model_name):
        model_class = find_plugin_model(model_name)
        return model_class if model_class is not None else recbole_get_model(model_name)

    get_model.__doc__ = recbole_get_model.__doc__
    targets = [recbole.utils, recbole.utils.utils, configurator]
    targets += [
        sys.modules[name]
        for name in ("recbole.quick_start.quick_start", "recbole.quick_start")
        if name in sys.modules
    ]
    for module in targets:
        module.get_model = get_model


def unique_run_files():
    from recbole.trainer.trainer import Trainer

    recbole_init = Trainer.__init__

    def __init__(self, config, model):
        recbole_init(self, config, model)
        self.saved_model_file = checkpoint.unique_checkpoint_path(
            self.checkpoint_dir, config["model"]
        )

    __init__.__doc__ = recbole_init.__doc__
    Trainer.__init__ = __init__


def _save_last_checkpoint(trainer, epoch):
    trainer._save_checkpoint(
        epoch,
        verbose=False,
        saved_model_file=checkpoint.last_checkpoint_path(trainer.saved_model_file),
    )


def _start_epoch(trainer, train_data, epoch_idx):
    """Before epoch ``epoch_idx``: checkpoint the finished one, or, first thing after
    a resume, restore the random generators saved with the checkpoint."""
    finished = getattr(trainer, "epoch_in_progress", None)
    if finished is not None and getattr(trainer, "save_last_checkpoint", False):
        _save_last_checkpoint(trainer, finished)
    saved_rng = getattr(trainer, "resume_rng_state", None)
    if saved_rng is not None:
        generators = {"train_data": train_data.generator}
        missing = rng_state.restore(saved_rng, generators)
        if missing:
            trainer.logger.warning(
                "the checkpoint holds no state for the training loader's shuffling; "
                "the resumed run will shuffle differently from an uninterrupted one"
            )
        trainer.resume_rng_state = None
    trainer.epoch_in_progress, trainer.batch_in_epoch = epoch_idx, 0


def resumable_training():
    from recbole.trainer.trainer import Trainer

    recbole_fit = Trainer.fit
    recbole_train_epoch = Trainer._train_epoch

    def fit(
        self,
        train_data,
        valid_data=None,
        verbose=True,
        saved=True,
        show_progress=False,
        callback_fn=None,
    ):
        self.train_data, self.save_last_checkpoint = train_data, saved
        self.epoch_in_progress = None
        result = recbole_fit(
            self, train_data, valid_data, verbose, saved, show_progress, callback_fn
        )
        if saved and self.epoch_in_progress is not None:
            _save_last_checkpoint(self, self.epoch_in_progress)
        return result

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        # Trainers such as RecVAE's call this more than once per epoch.
        if epoch_idx != getattr(self, "epoch_in_progress", None):
            _start_epoch(self, train_data, epoch_idx)
        return recbole_train_epoch(
            self, train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress
        )

    fit.__doc__ = recbole_fit.__doc__
    _train_epoch.__doc__ = recbole_train_epoch.__doc__
    Trainer.fit = fit
    Trainer._train_epoch = _train_epoch


def _last_good_checkpoint(trainer):
    for path in (
        checkpoint.last_checkpoint_path(trainer.saved_model_file),
        trainer.saved_model_file,
    ):
        if os.path.isfile(path):
            return path
    return None


def finite_loss_check():
    from recbole.trainer.trainer import Trainer

    def _check_nan(self, loss):
        """Raise TrainingDivergedError if the loss of the coming step is NaN or Inf."""
        batch = getattr(self, "batch_in_epoch", 0)
        self.batch_in_epoch = batch + 1
        if bool(torch.isfinite(loss).all()):
            return
        epoch = getattr(self, "epoch_in_progress", None)
        batches = len(getattr(self, "train_data", None) or ())
        step = epoch * batches + batch if epoch is not None and batches else batch
        value = "NaN" if bool(torch.isnan(loss).any()) else "Inf"
        good = _last_good_checkpoint(self)
        kept = f"the last good checkpoint {good} is kept" if good else "no checkpoint was written"
        raise TrainingDivergedError(
            f"training diverged: the loss is {value} at epoch {epoch}, step {step} "
            f"(batch {batch} of the epoch); stopped before that step, {kept}; lower "
            "learning_rate or set clip_grad_norm"
        )

    Trainer._check_nan = _check_nan


def _ensure_dir(dir_path):
    """Make sure the directory exists (safe when another process creates it too)."""
    os.makedirs(dir_path, exist_ok=True)


def race_free_dirs():
    modules = [
        "recbole.utils.utils",
        "recbole.utils",
        "recbole.utils.logger",
        "recbole.trainer.trainer",
        "recbole.data.utils",
        "recbole.data.dataset.dataset",
    ]
    for name in modules:
        importlib.import_module(name).ensure_dir = _ensure_dir
def plugin_metrics():
    from recbole.evaluator import register

    from recbole_anchor.evaluator import metrics

    for name, metric_class in vars(metrics).items():
        if isinstance(metric_class, type) and metric_class.__module__ == metrics.__name__:
            key = name.lower()
            register.metrics_dict[key] = metric_class
            register.metric_information[key] = metric_class.metric_need
            register.metric_types[key] = metric_class.metric_type
            if metric_class.smaller and key not in register.smaller_metrics:
                register.smaller_metrics.append(key)


def still_improving(scores, bigger=True):
    """Whether the least-squares slope of ``scores`` (in evaluation order) points the
    better way."""
    if len(scores) < 2:
        return False
    steps = np.arange(len(scores), dtype=float)
    slope = np.polyfit(steps, np.asarray(scores, dtype=float), 1)[0]
    return slope > 0 if bigger else slope < 0


def trend_aware_stopping():
    from recbole.trainer import trainer as trainer_module

    trainer_cls = trainer_module.Trainer
    recbole_valid_epoch = trainer_cls._valid_epoch

    def _valid_epoch(self, valid_data, show_progress=False):
        valid_score, valid_result = recbole_valid_epoch(self, valid_data, show_progress)
        history = self.__dict__.setdefault("valid_score_history", [])
        history.append(float(valid_score))
        base = self.__dict__.setdefault("base_stopping_step", self.stopping_step)
        bigger = self.valid_metric_bigger
        improved = valid_score >= self.best_valid_score if bigger else (
            valid_score <= self.best_valid_score
        )
        # RecBole's fit calls early_stopping(valid_score, best, self.cur_step,
        # self.stopping_step) next, which stops once cur_step + 1 > stopping_step. A
        # stop is held back by raising stopping_step for this evaluation, so cur_step
        # keeps counting the evaluations since the best (RecBole's closing line "best
        # eval result in epoch N" subtracts it from the last epoch).
        hold = (
            not improved
            and self.cur_step >= base
            and still_improving(history[-3 * base :], bigger)
        )
        self.stopping_step = self.cur_step + 1 if hold else base
        return valid_score, valid_result

    _valid_epoch.__doc__ = recbole_valid_epoch.__doc__
    trainer_cls._valid_epoch = _valid_epoch


def _gloo_init_device(self):
    """RecBole's ``Config._init_device`` for a multi-process run without CUDA."""
    final = self.final_config_dict
    final["gpu_id"] = str(final["gpu_id"]) if final["gpu_id"] is not None else ""
    torch.distributed.init_process_group(
        backend="gloo",
        rank=final["local_rank"] + (final["offset"] or 0),
        world_size=final["world_size"],
        init_method=f"tcp://{final['ip']}:{final['port']}",
    )
    final["device"] = torch.device("cpu")
    final["single_spec"] = False
    if final["local_rank"] != 0:
        final["state"] = "error"
        final["show_progress"] = False
        final["verbose"] = False


def cpu_distributed():
    from recbole.trainer import trainer as trainer_module
    from torch.nn.parallel import DistributedDataParallel

    recbole_init_device = configurator.Config._init_device

    def _init_device(self):
        if "local_rank" in self.final_config_dict and not torch.cuda.is_available():
            return _gloo_init_device(self)
        return recbole_init_device(self)

    _init_device.__doc__ = recbole_init_device.__doc__
    configurator.Config._init_device = _init_device

    abstract_trainer = trainer_module.AbstractTrainer
    # torch >= 2.12 names it forward_sync_buffers (broadcast_buffers is deprecated).
    ddp_options = inspect.signature(DistributedDataParallel.__init__).parameters
    no_forward_buffer_sync = (
        {"forward_sync_buffers": False}
        if "forward_sync_buffers" in ddp_options
        else {"broadcast_buffers": False}
    )

    def abstract_init(self, config, model):
        self.config = config
        self.model = model
        if not config["single_spec"]:
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            on_cuda = torch.device(config["device"]).type == "cuda"
            self.distributed_model = DistributedDataParallel(
                self.model,
                device_ids=[config["local_rank"]] if on_cuda else None,
                **no_forward_buffer_sync,
            )

    abstract_init.__doc__ = abstract_trainer.__init__.__doc__
    abstract_trainer.__init__ = abstract_init

    trainer_cls = trainer_module.Trainer
    unique_init = trainer_cls.__init__

    def __init__(self, config, model):
        unique_init(self, config, model)
        if not config["single_spec"]:
            shared = [self.saved_model_file]
            torch.distributed.broadcast_object_list(shared, src=0)
            self.saved_model_file = shared[0]

    __init__.__doc__ = unique_init.__doc__
    trainer_cls.__init__ = __init__


def apply(find_plugin_model, config_from_dict):
    """Apply every patch once.

    ``find_plugin_model(name)`` returns a plugin model class or None;
    ``config_from_dict(plain)`` rebuilds a Config from a checkpoint's plain config.
    """
    if _APPLIED:
        return
    numpy_aliases()
    lazy_ray()
    model_lookup(find_plugin_model)
    weights_only_checkpoints(config_from_dict)
    autoencoder_dataloader()
    pandas3_features()
    hyperopt_search()
    unique_run_files()
    resumable_training()
    finite_loss_check()
    race_free_dirs()
    plugin_metrics()
    trend_aware_stopping()
    weights_only_pretrain_checkpoints()
    cpu_distributed()
    _APPLIED.append(True)
