"""Checks that a dataset's atomic files exist and have a readable header, before
RecBole reads them (a missing dataset is handed to :mod:`recbole_anchor.data.download`,
which downloads it or says how to get it; RecBole fails deep inside pandas on a
malformed header), and :func:`find_row_problem`, which names the first bad line of a
file once RecBole has failed to read it."""
import os

from recbole.utils.enum_type import FeatureType

from recbole_anchor.data.download import fetch_missing_dataset
from recbole_anchor.errors import MalformedDatasetError

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
        if field in {name for name, _ in columns}:
            raise MalformedDatasetError(
                f"{path}:1: column '{field}' appears twice in the header; "
                "give every column its own name"
            )
        columns.append((field, ftype))
    return columns


#: Suffixes of the atomic files RecBole reads for a dataset.
ATOMIC_SUFFIXES = ("inter", "user", "item", "kg", "link", "net")


def atomic_files(config):
    """The dataset's atomic files that exist (interaction files first)."""
    folder, name = config["data_path"], config["dataset"]
    others = [os.path.join(folder, f"{name}.{suffix}") for suffix in ATOMIC_SUFFIXES[1:]]
    return [path for path in inter_files(config) + others if os.path.isfile(path)]


def _float_problem(value, seq_separator=None):
    parts = value.split(seq_separator) if seq_separator is not None else [value]
    for part in parts:
        part = part.strip()
        if not part:
            continue
        try:
            float(part)
        except ValueError:
            return part
    return None


def find_row_problem(path, separator="\t", encoding="utf-8", seq_separator=" "):
    """``"path:line: problem"`` for the first line RecBole cannot read (bytes that are
    not ``encoding``, a float field that is not a number), or None. Reads the whole
    file: call it to explain a failure, not on every load."""
    columns = read_header(path, separator, encoding)
    with open(path, "rb") as handle:
        handle.readline()
        for number, raw in enumerate(handle, start=2):
            try:
                line = raw.decode(encoding).rstrip("\r\n")
            except UnicodeDecodeError:
                return (
                    f"{path}:{number}: bytes that are not valid {encoding}; save the "
                    f"file as {encoding} or set the `encoding` config key"
                )
            for (field, ftype), value in zip(columns, line.split(separator)):
                if ftype not in ("float", "float_seq"):
                    continue
                bad = _float_problem(value, seq_separator if ftype == "float_seq" else None)
                if bad is not None:
                    return (
                        f"{path}:{number}: field '{field}' is {ftype} but holds {bad!r}; "
                        "fix the value or declare the column as token"
                    )
    return None


def check_dataset_files(config):
    """Raise a one-line error if the dataset's interaction files are missing (after
    downloading them, where RecBole can and ``download`` allows) or their header is
    malformed or lacks a column that ``load_col`` asks for."""
    if config["dataset_save_path"] or config["dataloaders_save_path"]:
        return
    missing = [path for path in inter_files(config) if not os.path.isfile(path)]
    if missing:
        fetch_missing_dataset(config, missing[0])
    for path in atomic_files(config):
        names = [field for field, _ in read_header(path, config["field_separator"] or "\t",
                                                   config["encoding"] or "utf-8")]
        if not path.endswith(".inter"):
            continue
        wanted = (config["load_col"] or {}).get("inter") or []
        missing = [column for column in wanted if column not in names]
        if missing:
            raise MalformedDatasetError(
                f"{path}:1: columns {missing} asked for by load_col are not in the "
                f"header {names}; add them to the file or change load_col"
            )
