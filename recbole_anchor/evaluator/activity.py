"""Evaluation by user activity, as in the paper's table: the test metrics computed
separately for groups of held-out users by their number of interactions (fold-in
plus targets, after filtering)."""
import numpy as np

#: (label, lowest, highest) interaction counts; None = no upper bound.
ACTIVITY_GROUPS = (("5-10", 5, 10), ("11-50", 11, 50), ("51-100", 51, 100), (">100", 101, None))


def interaction_counts(eval_data):
    """Interactions (fold-in + targets) of each user that ``eval_data`` evaluates,
    as ``(user_ids, counts)``."""
    users = eval_data.uid_list.numpy()
    fold_in = np.fromiter(
        (len(items) for items in eval_data.uid2history_item[users]), dtype=np.int64, count=len(users)
    )
    return users, fold_in + eval_data.uid2items_num[users]


def group_loader(eval_data, users):
    """A loader like ``eval_data`` (same sampler, so the same masked items) over the
    users ``users`` only."""
    dataset = eval_data._dataset
    in_group = np.isin(dataset.inter_feat[dataset.uid_field].numpy(), users)
    part = dataset.copy(dataset.inter_feat[np.flatnonzero(in_group)])
    return type(eval_data)(eval_data.config, part, eval_data._sampler, shuffle=False)


def evaluate_by_activity(trainer, eval_data, groups=ACTIVITY_GROUPS):
    """``{label: {"users": n, metric: value, ...}}`` for each activity group of the
    users in the full-sort loader ``eval_data``, with the trainer's current model;
    groups without users are left out."""
    users, counts = interaction_counts(eval_data)
    results = {}
    for label, low, high in groups:
        members = users[(counts >= low) & ((counts <= high) if high is not None else True)]
        if len(members) == 0:
            continue
        result = trainer.evaluate(group_loader(eval_data, members), load_best_model=False)
        results[label] = {"users": int(len(members)), **{k: float(v) for k, v in result.items()}}
    return results


def format_activity_table(results):
    """The per-group results as a text table: one row per group, one column per metric."""
    if not results:
        return "by user activity: no evaluated users"
    metrics = [key for key in next(iter(results.values())) if key != "users"]
    header = ["interactions", "users"] + metrics
    rows = [[label, str(values["users"])] + [f"{values[m]:.4f}" for m in metrics]
            for label, values in results.items()]
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths))
             for row in [header] + rows]
    return "\n".join(["by user activity (test users):"] + lines)
