"""The plugin's ``create_dataset`` and ``data_preparation`` (RecBole's, plus the
strong-generalization split: :mod:`recbole_anchor.data.preparation`), with malformed
data reported as one line.

RecBole reads atomic files with pandas and fails with whatever pandas or its own
filters raise (``UnicodeDecodeError``, ``could not convert string to float``, "Some
feat is empty"), none of which names the file. Here those failures become a
:class:`~recbole_anchor.errors.MalformedDatasetError` that names the file and line
when one is at fault (found by :func:`~recbole_anchor.data.atomic_files.find_row_problem`,
which reads the files only after a failure), else the dataset and RecBole's reason.
Neither function writes into the dataset folder.
"""
import os

from recbole_anchor.data import preparation
from recbole_anchor.data.atomic_files import atomic_files, find_row_problem
from recbole_anchor.errors import MalformedDatasetError, RecBoleAnchorError

# What RecBole and pandas raise for data they cannot use (pandas' ParserError and
# EmptyDataError, and UnicodeDecodeError, are ValueErrors).
DATA_ERRORS = (ValueError, TypeError, KeyError, IndexError, ZeroDivisionError, OverflowError)


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


def create_dataset(config):
    """``create_dataset``; bad data raises MalformedDatasetError."""
    try:
        return preparation.create_dataset(config)
    except RecBoleAnchorError:
        raise
    except DATA_ERRORS as err:
        raise MalformedDatasetError(_explain(config, err)) from None


def data_preparation(config, dataset):
    """``data_preparation``; data it cannot split or sample from raises
    MalformedDatasetError."""
    try:
        return preparation.data_preparation(config, dataset)
    except RecBoleAnchorError:
        raise
    except DATA_ERRORS as err:
        raise MalformedDatasetError(_explain(config, err)) from None
