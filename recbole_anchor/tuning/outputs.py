"""Files a search leaves behind, each rewritten whole through a temporary file so that a
reader (or a second worker writing the same file) never sees half of one."""
import csv

import yaml
from recbole.utils import dict2str

from recbole_anchor.trainer.checkpoint import atomic_open


def write_csv(path, rows):
    """Rewrite a table of dict rows (rows may add columns)."""
    columns = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    with atomic_open(path, newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def write_yaml(path, data):
    with atomic_open(path, encoding="utf-8") as handle:
        yaml.safe_dump(data, handle, sort_keys=False)


def write_result_file(path, entries):
    """RecBole's ``HyperTuning.export_result`` format: per configuration a
    ``key:value, key:value`` line, then its validation and test results."""
    with atomic_open(path, encoding="utf-8") as handle:
        for params, valid_result, test_result in entries:
            handle.write(", ".join(f"{key}:{value}" for key, value in params.items()) + "\n")
            handle.write("Valid result:\n" + dict2str(valid_result) + "\n")
            handle.write("Test result:\n" + dict2str(test_result) + "\n\n")
