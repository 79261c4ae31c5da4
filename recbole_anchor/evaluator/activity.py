"""User activity groups, as in the paper's table (5-10, 11-50, 51-100, >100
interactions), and the evaluation by them: the test metrics computed separately for
groups of held-out users by their number of interactions (fold-in plus targets, after
filtering). The latent-geometry diagnostics group users by the same bounds
(:mod:`recbole_anchor.diagnose.activity`)."""
import numpy as np

#: (label, lowest, highest) interaction counts; None = no upper bound.
ACTIVITY_GROUPS = (("5-10", 5, 10), ("11-50", 11, 50), ("51-100", 51, 100), (">100", 101, None))


def activity_masks(counts, groups=ACTIVITY_GROUPS):
    """``{label: boolean mask over users}`` of the users whose interaction count
    (``counts``, one per user) lies in each group's bounds, for the non-empty groups;
    users outside every group (fewer than 5 interactions) are in none."""
    counts = np.asarray(counts)
    masks = {}
    for label, low, high in groups:
        members = (counts >= low) & ((counts <= high) if high is not None else True)
        if members.any():
            masks[label] = members
    return masks


def interaction_counts(eval_data):
    """Interactions (fold-in + targets) of each user that ``eval_data`` evaluates,
    as ``(user_ids, counts)``."""
    users = eval_data.uid_list.numpy()
    fold_in = np.fromiter(
        (len(items) for items in eval_data.uid2history_item[users]), dtype=np.int64, count=len(users)
    )
    return users, fold_in + eval_data.uid2items_num[users]


def evaluate_by_activity(eval_data, per_user, groups=ACTIVITY_GROUPS):
    """``{label: {"users": n, metric: value, ...}}`` for each activity group of the
    users of the full-sort loader ``eval_data``: the group means of ``per_user``
    (``{metric: values}``, one value per user in the loader's order, as
    :class:`~recbole_anchor.evaluator.per_user.PerUserEvaluator` keeps them); groups
    without users are left out."""
    _, counts = interaction_counts(eval_data)
    results = {}
    for label, members in activity_masks(counts, groups).items():
        results[label] = {"users": int(members.sum())}
        for metric, values in per_user.items():
            results[label][metric] = round(float(np.asarray(values)[members].mean()), 4)
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
