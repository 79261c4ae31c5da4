"""The users the diagnostics look at: a seeded sample and their training rows. Their
activity groups are the evaluation's (:data:`recbole_anchor.evaluator.activity.ACTIVITY_GROUPS`),
counted here in training interactions, i.e. what the encoder sees."""
import numpy as np
import torch


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

