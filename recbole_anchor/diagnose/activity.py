"""The users the diagnostics look at: a seeded sample, their training rows and
their activity groups (number of training interactions, i.e. what the encoder sees)."""
import numpy as np
import torch

#: Activity groups as (name, fewest, most) training interactions, as in the paper.
ACTIVITY_GROUPS = (
    ("<5", 1, 4),
    ("5-10", 5, 10),
    ("11-50", 11, 50),
    ("51-100", 51, 100),
    (">100", 101, np.inf),
)


def training_matrix(dataset):
    """Binary users x items CSR matrix of the training interactions."""
    matrix = dataset.inter_matrix(form="csr").astype(np.float32)
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def sample_users(matrix, n_users, seed):
    """Sorted ids of ``n_users`` users drawn without replacement (seeded) from the
    users with at least one training interaction; all of them if fewer."""
    candidates = np.flatnonzero(np.diff(matrix.indptr) > 0)
    if n_users >= len(candidates):
        return candidates
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(candidates, size=n_users, replace=False))


def dense_rows(matrix, users):
    """The users' binary rows as a dense float tensor (len(users) x n_items)."""
    return torch.from_numpy(matrix[users].toarray())


def activity_groups(counts):
    """{group name: boolean mask over users}, for the non-empty groups, from the
    users' training interaction counts."""
    counts = np.asarray(counts)
    groups = {}
    for name, low, high in ACTIVITY_GROUPS:
        mask = (counts >= low) & (counts <= high)
        if mask.any():
            groups[name] = mask
    return groups
