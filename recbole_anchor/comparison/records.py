"""One JSON record per finished (model, seed) run, written the moment it exists.

A comparison is resumable because its state is nothing but these files: a rerun skips
every (model, seed) that already has a record, and a crash or Ctrl-C loses nothing
that finished. Records are written atomically (temporary file, fsync, rename).
"""
import hashlib
import json
import os
import re

from recbole_anchor.trainer.checkpoint import atomic_open


def safe_name(model):
    """A file name for a model spec: the name itself, or for a variant the name with
    its odd characters replaced and a short hash that keeps distinct specs apart."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", str(model))
    if safe != str(model):
        safe += "-" + hashlib.sha1(str(model).encode()).hexdigest()[:8]
    return safe


def run_record(model, dataset, seed, params, result, seconds):
    """The record of a finished run of ``model`` (a spec) on ``seed`` with the
    hyperparameters ``params``, from its
    :func:`~recbole_anchor.quick_start.run_recbole_anchor` ``result``."""
    return {
        "model": model,
        "dataset": dataset,
        "seed": seed,
        "params": dict(params),
        "status": "ok",
        "reason": "",
        "seconds": round(seconds, 1),
        "valid": result["best_valid_result"],
        "test": result["test_result"],
        "test_per_user": result.get("test_per_user", {}),
        "activity": result.get("activity_result", {}),
    }


class RecordStore:
    """Records of a comparison, in ``<output_dir>/runs/<model>__seed<seed>.json``."""

    def __init__(self, output_dir):
        self.folder = os.path.join(output_dir, "runs")
        os.makedirs(self.folder, exist_ok=True)

    def path(self, model, seed):
        return os.path.join(self.folder, f"{safe_name(model)}__seed{seed}.json")

    def has(self, model, seed):
        return os.path.isfile(self.path(model, seed))

    def write(self, record):
        with atomic_open(self.path(record["model"], record["seed"]), encoding="utf-8") as handle:
            json.dump(record, handle)

    def read(self, model, seed):
        with open(self.path(model, seed), encoding="utf-8") as handle:
            return json.load(handle)
