"""Checks that a dataset's atomic files exist and have a readable header, before
RecBole reads them (RecBole would try a network download for a missing dataset, and
fails deep inside pandas on a malformed header)."""
import os

from recbole.utils.enum_type import FeatureType

from recbole_anchor.errors import DatasetNotFoundError, MalformedDatasetError

_TYPES = {feature_type.value for feature_type in FeatureType}


def inter_files(config):
    """The interaction files RecBole will read for this config."""
    folder, name = config["data_path"], config["dataset"]
    parts = config["benchmark_filename"]
    if parts:
        return [os.path.join(folder, f"{name}.{part}.inter") for part in parts]
    return [os.path.join(folder, f"{name}.inter")]


def read_header(path, separator="\t", encoding="utf-8"):
    """Column names and types of an atomic file's first line, e.g.
    ``[("user_id", "token"), ("rating", "float")]``."""
    with open(path, "rb") as handle:
        raw = handle.readline()
    if not raw.strip():
        raise MalformedDatasetError(
            f"{path}:1: empty file or empty header; the first line must name the "
            "columns as name:type (e.g. user_id:token<TAB>item_id:token)"
        )
    try:
        line = raw.decode(encoding).rstrip("\r\n")
    except UnicodeDecodeError:
        raise MalformedDatasetError(
            f"{path}:1: header is not valid {encoding}; save the file as {encoding} "
            "or set the `encoding` config key"
        ) from None
    columns = []
    for column in line.split(separator):
        field, sep, ftype = column.partition(":")
        if not sep or not field or ftype not in _TYPES:
            raise MalformedDatasetError(
                f"{path}:1: column '{column}' is not name:type with type one of "
                f"{sorted(_TYPES)}; fix the header (separator {separator!r})"
            )
        columns.append((field, ftype))
    return columns


def check_dataset_files(config):
    """Raise a one-line error if the dataset's interaction files are missing or their
    header is malformed or lacks a column that ``load_col`` asks for."""
    if config["dataset_save_path"] or config["dataloaders_save_path"]:
        return
    folder = os.path.abspath(config["data_path"])
    for path in inter_files(config):
        if not os.path.isfile(path):
            raise DatasetNotFoundError(
                f"dataset '{config['dataset']}' not found: no file {path}; put its "
                f"RecBole atomic files in {folder}/ or pass --data_path=DIR where "
                f"DIR/{config['dataset']}/ holds them"
            )
        names = [field for field, _ in read_header(path, config["field_separator"] or "\t",
                                                   config["encoding"] or "utf-8")]
        wanted = (config["load_col"] or {}).get("inter") or []
        missing = [column for column in wanted if column not in names]
        if missing:
            raise MalformedDatasetError(
                f"{path}:1: columns {missing} asked for by load_col are not in the "
                f"header {names}; add them to the file or change load_col"
            )
