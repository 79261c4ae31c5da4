"""The plugin's ``create_dataset`` and ``data_preparation``: RecBole's, plus the
strong-generalization (SG) split, with malformed data reported as one line.

For any other split both are RecBole's own. Under ``eval_args.split: {'SG': ...}``
the dataset is a :class:`~recbole_anchor.data.strong_generalization.StrongGeneralizationDataset`
and the loaders are:

- training: RecBole's loader for the model over the training users' interactions
  only (the per-user loader over the training users only);
- validation / test: RecBole's evaluation loaders over the held-out users' targets,
  with samplers built from the training part plus the fold-in items, so the
  full-sort loader's "history" of a held-out user, the items masked from its
  ranking, is exactly its fold-in set.

RecBole reads atomic files with pandas and fails with whatever pandas or its own
filters raise (``UnicodeDecodeError``, ``could not convert string to float``, "Some
feat is empty"), none of which names the file. Here those failures become a
:class:`~recbole_anchor.errors.MalformedDatasetError` that names the file and line
when one is at fault (found by :func:`~recbole_anchor.data.atomic_files.find_row_problem`,
which reads the files only after a failure), else the dataset and RecBole's reason.
Neither function writes into the dataset folder.
"""
import os

import torch
from recbole.data import utils as recbole_data_utils
from recbole.data.dataloader import UserDataLoader
from recbole.utils import set_color

from recbole_anchor.data.atomic_files import atomic_files, find_row_problem
from recbole_anchor.data.dataloader import TrainingUserDataLoader
from recbole_anchor.data.strong_generalization import (
    StrongGeneralizationDataset,
    is_strong_generalization,
)
from recbole_anchor.errors import MalformedDatasetError, RecBoleAnchorError
from recbole_anchor.model.fold_in import check_fold_in_support

recbole_create_dataset = recbole_data_utils.create_dataset
recbole_data_preparation = recbole_data_utils.data_preparation

# What RecBole and pandas raise for data they cannot use (pandas' ParserError and
# EmptyDataError, and UnicodeDecodeError, are ValueErrors).
DATA_ERRORS = (ValueError, TypeError, KeyError, IndexError, ZeroDivisionError, OverflowError)


def create_dataset(config):
    """RecBole's ``create_dataset``; under the SG split, first checks that the model
    can score held-out users (one-line error otherwise). Bad data raises
    MalformedDatasetError."""
    try:
        return _create_dataset(config)
    except RecBoleAnchorError:
        raise
    except DATA_ERRORS as err:
        raise MalformedDatasetError(_explain(config, err)) from None


def data_preparation(config, dataset):
    """``(train_data, valid_data, test_data)`` as RecBole's ``data_preparation``; data
    it cannot split or sample from raises MalformedDatasetError."""
    try:
        return _data_preparation(config, dataset)
    except RecBoleAnchorError:
        raise
    except DATA_ERRORS as err:
        raise MalformedDatasetError(_explain(config, err)) from None


def _create_dataset(config):
    if not is_strong_generalization(config):
        return recbole_create_dataset(config)
    check_fold_in_support(config)
    dataset = StrongGeneralizationDataset(config)
    if config["save_dataset"]:
        dataset.save()
    return dataset


def _data_preparation(config, dataset):
    if not isinstance(dataset, StrongGeneralizationDataset):
        return recbole_data_preparation(config, dataset)
    train, valid, test = dataset.build()
    train_sampler, valid_sampler, test_sampler = recbole_data_utils.create_samplers(
        config, dataset, [train.with_fold_in(), valid, test]
    )
    train_loader = recbole_data_utils.get_dataloader(config, "train")
    if issubclass(train_loader, UserDataLoader):
        train_loader = TrainingUserDataLoader
    train_data = train_loader(config, train, train_sampler, shuffle=config["shuffle"])
    valid_data = recbole_data_utils.get_dataloader(config, "valid")(
        config, valid, valid_sampler, shuffle=False
    )
    test_data = recbole_data_utils.get_dataloader(config, "test")(
        config, test, test_sampler, shuffle=False
    )
    dataset.logger.info(
        set_color("[Evaluation]: ", "pink")
        + f"strong generalization, {_n_users(valid)} validation and "
        f"{_n_users(test)} test users scored on their targets"
    )
    return train_data, valid_data, test_data


def _n_users(part):
    return torch.unique(part.inter_feat[part.uid_field]).numel()


def _explain(config, err):
    for path in atomic_files(config):
        try:
            problem = find_row_problem(
                path,
                config["field_separator"] or "\t",
                config["encoding"] or "utf-8",
                config["seq_separator"] or " ",
            )
        except RecBoleAnchorError as header_error:
            problem = str(header_error)
        if problem:
            return problem
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
    folder = os.path.abspath(config["data_path"])
    return (
        f"dataset '{config['dataset']}' in {folder} cannot be used: {reason} "
        f"({type(err).__name__}); check its atomic files and the data filtering settings"
    )
