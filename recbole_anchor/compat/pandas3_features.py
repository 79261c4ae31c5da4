"""Three places where pandas 3 changed what RecBole 1.2.1's feature loading does (no
upstream issue; RecBole predates pandas 3).

- ``Dataset._fill_nan`` fills missing values with ``feat[field].fillna(...,
  inplace=True)``, which Copy-on-Write turns into a silent no-op, so missing token and
  float feature values stay NaN: replaced by column assignment.
- The same no-op in ``Dataset._load_feat`` (before splitting ``token_seq``/``float_seq``
  cells) makes a missing sequence value raise ``AttributeError: 'float' object has no
  attribute 'split'``: the tables it reads now come with missing sequence cells
  already empty.
- ``Dataset._remap`` splits the remapped IDs of a ``token_seq`` field at
  ``feat[field].agg(len)``, which pandas 3 evaluates as the length of the whole column,
  so loading any ``token_seq`` feature raises ``ValueError: Length of values (1) does
  not match length of index``: it now takes each cell's length (``map(len)``).

Three warnings pandas 3 makes RecBole's dataset code print on every load are silenced,
by message and module, since their calls are RecBole's and harmless:
``Dataset._dataframe_to_interaction``'s ``torch.LongTensor(column.values)`` copies
a Copy-on-Write read-only array ("The given NumPy array is not writable"), the
filters' ``DataFrame.drop(..., inplace=True)`` is deprecated for pandas 4, and
``_load_feat``'s chained ``fillna(inplace=True)`` on sequence columns (a no-op, whose
work the tables read here have already done) raises a ``ChainedAssignmentError``
warning.
"""
import warnings

import numpy as np
import pandas as pd
from recbole.utils.enum_type import FeatureType


def _fill_nan(self):
    """Missing token values become 0 ([PAD]); missing float values the field's mean;
    missing sequences empty arrays (RecBole's ``Dataset._fill_nan``, pandas-3-safe)."""
    for feat_name in self.feat_name_list:
        feat = getattr(self, feat_name)
        for field in feat:
            ftype = self.field2type[field]
            if ftype == FeatureType.TOKEN:
                feat[field] = feat[field].fillna(value=0)
            elif ftype == FeatureType.FLOAT:
                feat[field] = feat[field].fillna(value=feat[field].mean())
            else:
                dtype = np.int64 if ftype == FeatureType.TOKEN_SEQ else np.float64
                feat[field] = feat[field].apply(
                    lambda x: np.array([], dtype=dtype) if isinstance(x, float) else x
                )


class _PandasEmptySeqCells:
    """``pandas`` as ``recbole.data.dataset.dataset`` sees it, except that ``read_csv``
    returns missing cells of ``*_seq`` columns (headers ``name:token_seq``,
    ``name:float_seq``) as empty strings, the value ``_load_feat`` means to fill in."""

    def __getattr__(self, name):
        return getattr(pd, name)

    @staticmethod
    def read_csv(*args, **kwargs):
        table = pd.read_csv(*args, **kwargs)
        for column in table.columns:
            if str(column).endswith("_seq"):
                table[column] = table[column].fillna("")
        return table


def split_like(column, flat):
    """``flat`` (the concatenated cells of the sequence ``column``) split back into one
    array per cell, each as long as its cell (``map(len)``: under pandas 3
    ``agg(len)`` is the length of the whole column)."""
    lengths = column.map(len).to_numpy()
    return np.split(flat, np.cumsum(lengths)[:-1])


def _remap(self, remap_list):
    """RecBole's ``Dataset._remap`` (token IDs to consecutive integers, one
    ``pd.factorize`` over all fields that share them), with each ``token_seq`` cell
    split at its own length (``map(len)``; pandas 3's ``agg(len)`` is the column's)."""
    if len(remap_list) == 0:
        return
    tokens, split_point = self._concat_remaped_tokens(remap_list)
    new_ids_list, mp = pd.factorize(tokens)
    new_ids_list = np.split(new_ids_list + 1, split_point)
    mp = np.array(["[PAD]"] + list(mp))
    token_id = {t: i for i, t in enumerate(mp)}
    for (feat, field, ftype), new_ids in zip(remap_list, new_ids_list):
        if field not in self.field2id_token:
            self.field2id_token[field] = mp
            self.field2token_id[field] = token_id
        if ftype == FeatureType.TOKEN:
            feat[field] = new_ids
        elif ftype == FeatureType.TOKEN_SEQ:
            feat[field] = split_like(feat[field], new_ids)


#: The warnings silenced, as (message, category); all from RecBole's dataset module.
SILENCED = (
    ("The given NumPy array is not writable", UserWarning),
    ("The inplace keyword", getattr(pd.errors, "Pandas4Warning", DeprecationWarning)),
    ("A value is being set on a copy", getattr(pd.errors, "ChainedAssignmentError", Warning)),
)


def apply():
    from recbole.data.dataset import dataset as dataset_module

    for message, category in SILENCED:
        warnings.filterwarnings(
            "ignore", message=message, category=category, module=r"recbole\.data\.dataset\."
        )
    dataset_module.Dataset._fill_nan = _fill_nan
    dataset_module.Dataset._remap = _remap
    dataset_module.pd = _PandasEmptySeqCells()
