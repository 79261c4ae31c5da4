r"""The strong-generalization (SG) split of Liang et al. (WWW 2018), as a RecBole Dataset.

Selected by ``eval_args: {split: {'SG': [train, valid, test]}}``. Whole users are
held out:

1. The filtered users are shuffled with ``seed``; the last ``n_test`` are test users,
   the ``n_valid`` before them validation users, all others training users. Entries
   ``< 1`` are fractions of the users (normalized by their sum when all three are
   fractions; each held-out part rounded down), entries ``>= 1`` are user counts for a
   held-out group; the training group always takes the users not held out.
2. The item set is the items of the training users: held-out users' interactions with
   any other item are dropped, and those items get no ID (Liang et al.).
3. Each held-out user's remaining items :math:`I_u` are split at random (``seed``)
   into targets :math:`T_u` with :math:`|T_u| = \lfloor (1 - r)\,|I_u| \rfloor`,
   :math:`r` = ``fold_in_ratio``, and fold-in items :math:`F_u = I_u \setminus T_u`.
   Users with no target are kept as input but not evaluated.

:meth:`StrongGeneralizationDataset.build` returns ``[train, valid, test]``: the
training users' interactions, and the targets of validation and test users. The
fold-in items (model input at evaluation, masked from ranking) are the training
part's :meth:`~StrongGeneralizationDataset.with_fold_in`.
"""
import numbers

import numpy as np
import pandas as pd
from recbole.data.dataset import Dataset
from recbole.data.interaction import cat_interactions

from recbole_anchor.errors import InvalidConfigError

SPLIT_NAME = "SG"

# Role of each interaction after the split.
TRAIN, VALID_FOLD_IN, VALID_TARGET, TEST_FOLD_IN, TEST_TARGET = range(5)
FOLD_IN_ROLES = (VALID_FOLD_IN, TEST_FOLD_IN)


def is_strong_generalization(config):
    """Whether ``eval_args.split`` selects the SG split."""
    split = (config["eval_args"] or {}).get("split")
    return isinstance(split, dict) and SPLIT_NAME in split


def held_out_sizes(split, n_users):
    """``(n_valid, n_test)`` users for ``split = [train, valid, test]`` among ``n_users``.

    Raises:
        InvalidConfigError: a malformed split, or one that leaves no training user.
    """
    usage = (
        "write eval_args.split as {'SG': [train, valid, test]} with fractions "
        "(e.g. [0.8, 0.1, 0.1]) or held-out user counts (e.g. [0.8, 10000, 10000])"
    )
    if (
        not isinstance(split, (list, tuple))
        or len(split) != 3
        or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in split)
        or any(v < 0 for v in split)
    ):
        raise InvalidConfigError(f"invalid SG split {split!r}: {usage}")
    fractions = all(v < 1 for v in split)
    total = sum(split) if fractions else 1.0
    if fractions and total <= 0:
        raise InvalidConfigError(f"invalid SG split {split!r}: {usage}")
    sizes = []
    for value in split[1:]:
        if value >= 1:
            if int(value) != value:
                raise InvalidConfigError(
                    f"invalid SG split {split!r}: {value} is neither a fraction (< 1) "
                    f"nor a whole user count; {usage}"
                )
            sizes.append(int(value))
        else:
            sizes.append(int(value / total * n_users))
    n_valid, n_test = sizes
    if n_valid + n_test >= n_users:
        raise InvalidConfigError(
            f"SG split {split!r} holds out {n_valid} + {n_test} users but the filtered "
            f"dataset has only {n_users}; hold out fewer users"
        )
    if n_valid == 0 or n_test == 0:
        raise InvalidConfigError(
            f"SG split {split!r} leaves the validation or test group empty among "
            f"{n_users} users; hold out more users"
        )
    return n_valid, n_test


def n_targets(n_items, fold_in_ratio):
    r""":math:`\lfloor (1 - r)\,n \rfloor` targets for a held-out user with ``n_items``
    items (Liang et al.: ``int(0.2 * n)``); the tolerance keeps ``1 - 0.8`` from
    rounding 5 * 0.2 down to 0."""
    return np.floor((1.0 - fold_in_ratio) * np.asarray(n_items) + 1e-9).astype(np.int64)


def check_fold_in_ratio(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise InvalidConfigError(
            f"invalid fold_in_ratio={value!r}: it must be in (0, 1), the share of a "
            "held-out user's items given as input (Liang et al.: 0.8)"
        )
    return float(value)


class StrongGeneralizationDataset(Dataset):
    """RecBole Dataset whose :meth:`build` holds out whole users (see module doc).

    Attributes (after loading):
        role (numpy.ndarray): per interaction of ``inter_feat``, one of ``TRAIN``,
            ``VALID_FOLD_IN``, ``VALID_TARGET``, ``TEST_FOLD_IN``, ``TEST_TARGET``.
    """

    def __init__(self, config):
        if config["benchmark_filename"]:
            raise InvalidConfigError(
                "the SG split holds out users itself and cannot use benchmark_filename; "
                "unset benchmark_filename or use a RecBole split (RS, LS, TS)"
            )
        self.fold_in_ratio = check_fold_in_ratio(
            0.8 if config["fold_in_ratio"] is None else config["fold_in_ratio"]
        )
        super().__init__(config)

    # ------------------------------------------------------------------ the split
    def _data_filtering(self):
        super()._data_filtering()
        self._hold_out_users()

    def _hold_out_users(self):
        """Assign each interaction its role; runs on tokens, before IDs are remapped,
        so that items seen only among held-out users never get an ID."""
        rng = np.random.default_rng(self.config["seed"])
        users = self.inter_feat[self.uid_field].to_numpy()
        unique_users, user_index = np.unique(users, return_inverse=True)
        n_users = len(unique_users)
        n_valid, n_test = held_out_sizes(self.config["eval_args"]["split"][SPLIT_NAME], n_users)
        group_of_user = np.zeros(n_users, dtype=np.int8)  # 0 train, 1 valid, 2 test
        order = rng.permutation(n_users)
        n_train = n_users - n_valid - n_test
        group_of_user[order[n_train : n_train + n_valid]] = 1
        group_of_user[order[n_train + n_valid :]] = 2
        group = group_of_user[user_index]

        # Items of the training users, by hashing the tokens (np.isin compares object
        # arrays item by item: minutes at ML-20M's size).
        item_codes, item_tokens = pd.factorize(
            self.inter_feat[self.iid_field], use_na_sentinel=False
        )
        train_item = np.zeros(len(item_tokens), dtype=bool)
        train_item[item_codes[group == 0]] = True
        keep = (group == 0) | train_item[item_codes]
        self.inter_feat = self.inter_feat[keep]
        if self.item_feat is not None:
            in_train = self.item_feat[self.iid_field].isin(item_tokens[train_item])
            self.item_feat = self.item_feat[in_train.to_numpy()]
        self._reset_index()
        group, user_index = group[keep], user_index[keep]

        # Per held-out user: a random order of the user's items; the first
        # floor((1 - r) n) in that order are targets.
        held = np.flatnonzero(group > 0)
        draw = rng.random(len(held))
        ordered = held[np.lexsort((draw, user_index[held]))]
        starts = np.r_[0, np.flatnonzero(np.diff(user_index[ordered])) + 1]
        counts = np.diff(np.r_[starts, len(ordered)])
        position = np.arange(len(ordered)) - np.repeat(starts, counts)
        is_target = position < np.repeat(n_targets(counts, self.fold_in_ratio), counts)

        role = np.full(len(group), TRAIN, dtype=np.int8)
        held_group = group[ordered]
        role[ordered] = np.where(
            held_group == 1,
            np.where(is_target, VALID_TARGET, VALID_FOLD_IN),
            np.where(is_target, TEST_TARGET, TEST_FOLD_IN),
        )
        self.role = role
        self.logger.info(
            f"SG split: {n_train} training, {n_valid} validation, {n_test} test users "
            f"(seed {self.config['seed']}, fold_in_ratio {self.fold_in_ratio})"
        )

    def build(self):
        """``[train, valid, test]``: training users' interactions, then the targets
        of the validation and test users (RecBole's build contract)."""
        self._change_feat_format()
        self._drop_unused_col()
        role = self.role
        train = self.copy(self.inter_feat[np.flatnonzero(role == TRAIN)])
        train.fold_in_feat = self.inter_feat[np.flatnonzero(np.isin(role, FOLD_IN_ROLES))]
        valid = self.copy(self.inter_feat[np.flatnonzero(role == VALID_TARGET)])
        test = self.copy(self.inter_feat[np.flatnonzero(role == TEST_TARGET)])
        for part in (train, valid, test):
            part.role = None  # roles index the whole dataset's inter_feat only
        return [train, valid, test]

    def with_fold_in(self):
        """This training part plus the held-out users' fold-in interactions: what a
        model may read as input (never the targets)."""
        return self.copy(cat_interactions([self.inter_feat, self.fold_in_feat]))
