"""Seeded synthetic implicit feedback of a given shape, written as RecBole atomic files.

User activity is long-tailed (every user has at least ``min_items`` items, the rest of
the interactions are shared out by log-normal weights, capped at a fifth of the
items) and so is item popularity (Zipf: the item of popularity rank r is drawn with
probability proportional to 1 / (r + 1)); a user's items are drawn by popularity
without replacement. Item IDs are a random permutation of the popularity ranks.

    python benchmarks/synthetic.py --shape=ml-20m --output=benchmarks/data
    python benchmarks/synthetic.py --shape=5000x2000x100000 --seed=1

writes ``<output>/synthetic-<shape>/synthetic-<shape>.inter`` (``user_id:token``,
``item_id:token``; one line per interaction).
"""
import argparse
import os
import re
import sys
import time

import numpy as np

#: Named shapes: (users, items, interactions).
SHAPES = {
    # MovieLens-20M after Liang et al.'s preprocessing (ratings >= 4, users >= 5).
    "ml-20m": (136_677, 20_108, 10_000_054),
    # MovieLens-1M as distributed (6,040 users x 3,706 rated movies).
    "ml-1m": (6_040, 3_706, 1_000_209),
}


def parse_shape(text):
    """``(users, items, interactions)`` of a named shape or of ``UxIxN``."""
    if text in SHAPES:
        return SHAPES[text]
    match = re.fullmatch(r"(\d+)x(\d+)x(\d+)", text)
    if not match:
        raise ValueError(
            f"unknown shape '{text}': use one of {sorted(SHAPES)} or USERSxITEMSxINTERACTIONS"
        )
    return tuple(int(part) for part in match.groups())


def dataset_name(shape):
    return f"synthetic-{shape}"


def user_activity(rng, n_users, n_items, n_interactions, min_items=5, sigma=1.1):
    """Items per user (n_users,): at least ``min_items``, at most ``n_items // 5``
    (or ``min_items`` if larger), log-normal beyond the minimum, summing to
    ``n_interactions``."""
    cap = max(min_items, n_items // 5)
    if not n_users * min_items <= n_interactions <= n_users * cap:
        raise ValueError(
            f"{n_interactions} interactions cannot give {n_users} users between "
            f"{min_items} and {cap} of {n_items} items each"
        )
    counts = np.full(n_users, min_items, dtype=np.int64)
    weights = rng.lognormal(0.0, sigma, n_users)
    while True:
        extra = n_interactions - counts.sum()
        open_users = counts < cap
        if extra == 0:
            return counts
        share = weights * open_users
        add = np.floor(extra * share / share.sum()).astype(np.int64)
        if add.sum() == 0:  # hand out the remainder one by one to the heaviest
            add[np.argsort(-share)[:extra]] = 1
        counts = np.minimum(counts + add, cap)


def draw_interactions(rng, counts, n_items, exponent=1.0):
    """Sorted keys ``user * n_items + item``: ``counts[u]`` distinct items per user,
    drawn by Zipf popularity, redrawing collisions until every user is complete."""
    popularity = 1.0 / np.arange(1, n_items + 1) ** exponent
    cumulative = np.cumsum(popularity / popularity.sum())
    item_of_rank = rng.permutation(n_items)
    done, keys = [], np.empty(0, dtype=np.int64)
    active = np.arange(len(counts))
    while len(active):
        have = np.bincount(
            np.searchsorted(active, keys // n_items), minlength=len(active)
        )
        deficit = counts[active] - have
        users = np.repeat(active, deficit)
        ranks = np.minimum(np.searchsorted(cumulative, rng.random(len(users))), n_items - 1)
        keys = np.unique(np.concatenate([keys, users * n_items + item_of_rank[ranks]]))
        have = np.bincount(np.searchsorted(active, keys // n_items), minlength=len(active))
        complete = have == counts[active]
        finished = np.isin(keys // n_items, active[complete])
        done.append(keys[finished])
        keys, active = keys[~finished], active[~complete]
    return np.sort(np.concatenate(done))


def generate(n_users, n_items, n_interactions, seed=2020):
    """(user, item) arrays (1-based tokens), sorted by user."""
    rng = np.random.default_rng(seed)
    counts = user_activity(rng, n_users, n_items, n_interactions)
    keys = draw_interactions(rng, counts, n_items)
    return keys // n_items + 1, keys % n_items + 1


def write_atomic(folder, name, users, items):
    """Write ``folder/name/name.inter``; returns its path."""
    os.makedirs(os.path.join(folder, name), exist_ok=True)
    path = os.path.join(folder, name, f"{name}.inter")
    table = np.column_stack([users, items])
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("user_id:token\titem_id:token\n")
        for start in range(0, len(table), 1_000_000):
            chunk = table[start : start + 1_000_000]
            handle.write("\n".join(f"{u}\t{i}" for u, i in chunk.tolist()))
            handle.write("\n")
    os.replace(tmp, path)
    return path


def ensure_dataset(shape, folder, seed=2020):
    """The dataset name for ``shape`` under ``folder``, generated if missing."""
    name = dataset_name(shape)
    path = os.path.join(folder, name, f"{name}.inter")
    if not os.path.isfile(path):
        users, items = generate(*parse_shape(shape), seed=seed)
        write_atomic(folder, name, users, items)
    return name


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="ml-1m", help="ml-20m, ml-1m or UxIxN")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "data"))
    parser.add_argument("--seed", type=int, default=2020)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    users, items = generate(*parse_shape(args.shape), seed=args.seed)
    path = write_atomic(args.output, dataset_name(args.shape), users, items)
    per_user = np.bincount(users)[1:]
    print(
        f"wrote {path}: {per_user.size} users, {np.unique(items).size} items, "
        f"{users.size} interactions (per user min {per_user.min()}, median "
        f"{int(np.median(per_user))}, max {per_user.max()}) in "
        f"{time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
