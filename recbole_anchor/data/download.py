"""Get a dataset whose atomic files are missing: download it the way RecBole does, or
say in one line how else to get it.

RecBole downloads a dataset named in its URL table (``recbole/properties/dataset/
url.yaml``): a zip of atomic files named after the zip (``Amazon_Books.zip`` holds
``Amazon_Books.inter``), extracted into ``<data_path>/<dataset>/`` and renamed to the
dataset name (``amazon-books.inter``). This module does the same with RecBole's table,
layout and renaming (``recbole.utils.url.rename_atomic_files``), but

- without RecBole's interactive y/N question for files over 1 GB, which hangs a batch
  job: the config key ``download`` (default True) decides;
- atomically: the zip is written to a temporary folder beside the dataset folder,
  checked (complete, every member's CRC right, ``<dataset>.inter`` present after the
  renaming) and only then moved into place, so a failed or interrupted download leaves
  nothing a later run would read;
- with a timeout, a byte-counting progress bar, and a one-line error naming the URL
  and the other ways to get the files when it fails.
"""
import http.client
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib

import recbole
import yaml
from recbole.utils.url import rename_atomic_files
from tqdm import tqdm

from recbole_anchor.errors import DatasetDownloadError, DatasetNotFoundError

#: Seconds without progress (connecting, or between two reads) before giving up.
TIMEOUT_S = 60
_CHUNK = 1 << 20


def url_table():
    """RecBole's table of downloadable datasets: dataset name -> zip URL."""
    path = os.path.join(os.path.dirname(recbole.__file__), "properties", "dataset", "url.yaml")
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def fetch_missing_dataset(config, missing):
    """Download the dataset of ``config`` whose file ``missing`` is absent, or raise the
    one-line error that says how to get it: no download exists for it, ``download`` is
    off, or the download failed."""
    name = config["dataset"]
    where = f"dataset '{name}' not found: no file {os.path.abspath(missing)}"
    ways_out = _ways_out(name, config["data_path"])
    if config["benchmark_filename"]:
        raise DatasetNotFoundError(
            f"{where} (benchmark_filename files are never downloaded); {ways_out}"
        )
    url = url_table().get(name)
    if url is None:
        raise DatasetNotFoundError(f"{where}, and RecBole has no download for it; {ways_out}")
    if not config["download"]:
        raise DatasetNotFoundError(
            f"{where}, and download is False; pass --download=True to download it from "
            f"{url}, or {ways_out}"
        )
    try:
        _download(name, os.path.abspath(config["data_path"]), url,
                         progress=config["show_progress"])
    except _DownloadFailed as err:
        raise DatasetDownloadError(
            f"{where}, and downloading it from {url} failed ({err}); {ways_out}"
        ) from None


def _ways_out(name, data_path):
    """The other two ways to get the files, as the end of an error line."""
    # Imported here: importing the package must not load the module that
    # ``python -m recbole_anchor.data.convert`` runs (runpy warns).
    from recbole_anchor.data.convert import convert_command

    root = os.path.dirname(os.path.normpath(data_path)) or "."
    existing = f"pass --data_path=DIR where DIR/{name}/ holds its atomic files"
    command = convert_command(name, root)
    if command is None:
        return f"{existing}, or put them in {os.path.abspath(data_path)}/"
    return f"{existing}, or convert the raw files: {command}"


class _DownloadFailed(Exception):
    """Why a download failed (the caller turns it into the user's one-line error)."""


def _download(name, folder, url, progress=True):
    """Put the atomic files of RecBole's zip at ``url``, renamed to ``name``, into
    ``folder``; nothing is written unless the whole zip arrived and checks out."""
    try:
        response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as err:
        raise _DownloadFailed(str(err)) from None
    except urllib.error.URLError as err:
        raise _DownloadFailed(str(err.reason)) from None
    except (OSError, http.client.HTTPException) as err:
        raise _DownloadFailed(str(err) or type(err).__name__) from None
    root = os.path.dirname(folder)
    created = _first_missing(root)
    staging, done = None, False
    try:
        with response:
            os.makedirs(root, exist_ok=True)
            staging = tempfile.mkdtemp(prefix=f".{name}.download-", dir=root)
            archive = _receive(response, url, staging, name, progress)
        files = os.path.join(staging, name)
        _extract(archive, files, name)
        _move_into_place(files, folder, name)
        done = True
    except OSError as err:  # writing, not the network: _receive reports that
        raise _DownloadFailed(f"cannot write in {root}: {err}") from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if not done and created is not None:
            shutil.rmtree(created, ignore_errors=True)


def _first_missing(path):
    """The outermost folder of ``path`` that does not exist yet, or None."""
    missing = None
    while not os.path.exists(path):
        missing, parent = path, os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


def _receive(response, url, staging, name, progress):
    """Stream the response into ``staging``; the path of the complete file."""
    path = os.path.join(staging, url.rpartition("/")[2] or f"{name}.zip")
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    print(f"downloading dataset '{name}' from {url}", file=sys.stderr)
    received = 0
    with open(path, "wb") as out, tqdm(
        total=total, unit="B", unit_scale=True, desc=f"downloading {name}",
        disable=not progress,
    ) as bar:
        while True:
            try:
                chunk = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as err:
                raise _DownloadFailed(
                    f"connection lost after {received} bytes: {err or type(err).__name__}"
                ) from None
            if not chunk:
                break
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    if total is not None and received != total:
        raise _DownloadFailed(f"received {received} of {total} bytes")
    return path


def _extract(archive, files, name):
    """Check the zip and extract it into ``files`` with RecBole's renaming."""
    try:
        with zipfile.ZipFile(archive) as handle:
            broken = handle.testzip()
            if broken is not None:
                raise _DownloadFailed(f"{broken} in the zip is corrupt")
            handle.extractall(files)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError) as err:
        raise _DownloadFailed(f"not a complete zip file: {err}") from None
    basename = os.path.splitext(os.path.basename(archive))[0]
    rename_atomic_files(files, basename, name)
    if not os.path.isfile(os.path.join(files, f"{name}.inter")):
        raise _DownloadFailed(
            f"the zip holds no {basename}.inter or {name}.inter (it holds "
            f"{sorted(os.listdir(files))})"
        )


def _move_into_place(files, folder, name):
    """Move the checked files to ``folder``: the whole folder in one rename when it does
    not exist, else file by file with ``<name>.inter`` last, so that a reader that finds
    the interaction file finds the others too."""
    if not os.path.exists(folder):
        try:
            os.rename(files, folder)
            return
        except OSError:
            if os.path.isfile(os.path.join(folder, f"{name}.inter")):
                return  # another run put the same download there first
            raise
    for entry in sorted(os.listdir(files), key=lambda entry: entry == f"{name}.inter"):
        os.replace(os.path.join(files, entry), os.path.join(folder, entry))
