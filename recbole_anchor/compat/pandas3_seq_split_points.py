"""Three more places where RecBole 1.2.1 splits a sequence field at ``agg(len)``, the
length of the whole column under pandas 3 (pandas < 3 gave each cell's), so they all
raise ``ValueError: Length of values (1) does not match length of index`` (no upstream
issue; RecBole predates pandas 3; :mod:`~recbole_anchor.compat.pandas3_features` fixes
the same call in ``Dataset._remap``):

- ``Dataset._normalize``: normalizing any ``float_seq`` field (``normalize_all: True``
  normalizes every one);
- ``Dataset._discretization``: any ``float_seq`` field listed in
  ``numerical_features``, discretized or not;
- ``KnowledgeBasedDataset._reset_ent_remapID``: a ``token_seq`` field that shares the
  entity IDs.

Each is RecBole's method with the column flattened and split back at each cell's own
length (:func:`split_like`); the values they compute are RecBole's.
"""
import numpy as np
from recbole.utils import set_color
from recbole.utils.enum_type import FeatureType

from recbole_anchor.compat.pandas3_features import split_like


def _normalize(self):
    """RecBole's ``Dataset._normalize``: min-max scaling of the float-like fields named
    by ``normalize_field`` or ``normalize_all``; ``float_seq`` over all their values."""
    if self.config["normalize_field"] is not None and self.config["normalize_all"] is True:
        raise ValueError("Normalize_field and normalize_all can't be set at the same time.")
    if self.config["normalize_field"]:
        fields = self.config["normalize_field"]
        for field in fields:
            if field not in self.field2type:
                raise ValueError(f"Field [{field}] does not exist.")
            ftype = self.field2type[field]
            if ftype != FeatureType.FLOAT and ftype != FeatureType.FLOAT_SEQ:
                self.logger.warning(
                    f"{field} is not a FLOAT/FLOAT_SEQ feat, which will not be normalized."
                )
    elif self.config["normalize_all"]:
        fields = self.float_like_fields
    else:
        return
    self.logger.debug(set_color("Normalized fields", "blue") + f": {fields}")
    for field in fields:
        for feat in self.field2feats(field):

            def norm(arr):
                mx, mn = max(arr), min(arr)
                if mx == mn:
                    self.logger.warning(f"All the same value in [{field}] from [{feat}_feat].")
                    arr = 1.0
                else:
                    arr = (arr - mn) / (mx - mn)
                return arr

            ftype = self.field2type[field]
            if ftype == FeatureType.FLOAT:
                feat[field] = norm(feat[field].values)
            elif ftype == FeatureType.FLOAT_SEQ:
                feat[field] = split_like(feat[field], norm(np.concatenate(feat[field].values)))


def _discretization_info(self):
    """``discretization``'s fields and methods, checked as RecBole checks them."""
    dis_info = {}
    if self.config["discretization"]:
        dis_info = self.config["discretization"]
        for field in list(dis_info.keys()):
            if field not in self.field2type:
                raise ValueError(f"Field [{field}] does not exist.")
            if field not in self.config["numerical_features"]:
                raise ValueError(f"Field [{field}] must be a numerical feature")
            ftype = self.field2type[field]
            if ftype != FeatureType.FLOAT and ftype != FeatureType.FLOAT_SEQ:
                self.logger.warning(
                    f"{field} is not a FLOAT/FLOAT_SEQ feat, which will not be normalized."
                )
                del dis_info[field]
        self.logger.debug(set_color("Normalized fields", "blue") + f": {dis_info.keys()}")
    return dis_info


def _bucket(info):
    """The bucket count of a discretization method (only ``ED`` needs one)."""
    if info["method"] == "ED":
        if "bucket" not in info:
            raise ValueError("The number of buckets must be set when apply equal discretization.")
        return info["bucket"]
    return None


def _discretization(self):
    """RecBole's ``Dataset._discretization``: every numerical feature becomes
    (value, bucket) pairs; those without a ``discretization`` entry keep their value
    with bucket 1. ``float_seq`` fields are discretized over all their values."""
    dis_info = _discretization_info(self)
    for field in self.config["numerical_features"]:
        if field in dis_info:
            method = dis_info[field]["method"]
            bucket = _bucket(dis_info[field])
            for feat in self.field2feats(field):

                def disc(arr, method, bucket):
                    if method == "ED":  # Equal Distance/Frequency Discretization.
                        lower, upper = min(arr), max(arr) + 1e-9
                        if upper != lower:
                            arr = np.floor((arr - lower) * bucket / (upper - lower) + 1)
                        else:
                            self.logger.warning(
                                f"All the same value in [{field}] from [{feat}_feat]."
                            )
                            arr = np.ones_like(arr) * bucket
                    elif method == "LD":  # Logarithm Discretization
                        mask = arr > 2
                        x = np.floor(np.log(arr * mask + 1e-9) ** 2 + 1)
                        x = np.where(mask, x, arr)
                        _, arr = np.unique(x, return_inverse=True)
                    else:
                        raise ValueError(f"Method [{method}] does not exist.")
                    return arr, int(max(arr) + 1)

                ftype = self.field2type[field]
                if ftype == FeatureType.FLOAT:
                    res, self.field2bucketnum[field] = disc(feat[field].values, method, bucket)
                    ret = np.ones_like(res)
                    feat[field] = np.stack([ret, res], axis=-1).tolist()
                elif ftype == FeatureType.FLOAT_SEQ:
                    res, self.field2bucketnum[field] = disc(
                        np.concatenate(feat[field].values), method, bucket
                    )
                    ret = np.ones_like(res)
                    res, ret = split_like(feat[field], res), split_like(feat[field], ret)
                    feat[field] = list(zip(ret, res))
        else:
            for feat in self.field2feats(field):
                ftype = self.field2type[field]
                if ftype == FeatureType.FLOAT:
                    feat[field] = np.stack(
                        [feat[field], np.ones_like(feat[field])], axis=-1
                    ).tolist()
                else:
                    ret = np.concatenate(feat[field].values)
                    res, ret = split_like(feat[field], np.ones_like(ret)), split_like(
                        feat[field], ret
                    )
                    feat[field] = list(zip(ret, res))


def _reset_ent_remapID(self, field, idmap, id2token, token2id):
    """RecBole's ``KnowledgeBasedDataset._reset_ent_remapID``: ``field``'s IDs mapped
    through ``idmap``; a ``token_seq`` field cell by cell."""
    self.field2id_token[field] = id2token
    self.field2token_id[field] = token2id
    for feat in self.field2feats(field):
        if self.field2type[field] == FeatureType.TOKEN:
            feat[field] = idmap[feat[field].values]
        else:
            feat[field] = split_like(feat[field], idmap[np.concatenate(feat[field].values)])


def apply():
    from recbole.data.dataset import Dataset, KnowledgeBasedDataset

    Dataset._normalize = _normalize
    Dataset._discretization = _discretization
    KnowledgeBasedDataset._reset_ent_remapID = _reset_ent_remapID
