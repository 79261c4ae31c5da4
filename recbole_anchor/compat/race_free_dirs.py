"""``recbole.utils.ensure_dir`` checks for a folder, then creates it, so of two runs
started at once one can fail with ``FileExistsError`` (no upstream issue). Folders are
now created with ``exist_ok=True``."""
import importlib
import os

#: The modules that imported ``ensure_dir`` by name.
MODULES = (
    "recbole.utils.utils",
    "recbole.utils",
    "recbole.utils.logger",
    "recbole.trainer.trainer",
    "recbole.data.utils",
    "recbole.data.dataset.dataset",
)


def ensure_dir(dir_path):
    """Make sure the directory exists (safe when another process creates it too)."""
    os.makedirs(dir_path, exist_ok=True)


def apply():
    for name in MODULES:
        importlib.import_module(name).ensure_dir = ensure_dir
