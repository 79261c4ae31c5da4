"""Sequential benchmark files get one wrong ``item_list_length`` for every row under
pandas 3 (no upstream issue; RecBole predates pandas 3).

``SequentialDataset._benchmark_presets`` (used whenever ``benchmark_filename`` gives
pre-split ``.inter`` files with an ``item_id_list`` column) sets
``item_list_length`` to ``inter_feat[item_id_list].agg(len)``. pandas < 3 applied
``len`` to each cell; pandas 3 applies it to the whole column, so every row's length
is the number of rows: no error, but sequential models then read padding as history
(RecBole's own ``test_seq_benchmark`` expects ``[1, 2, 3, 1, 1, 2, 1]`` and gets
the row count everywhere). Each row's length is now its own list's (``map(len)``).
"""
from recbole.utils.enum_type import FeatureSource, FeatureType


def _benchmark_presets(self):
    """RecBole's ``SequentialDataset._benchmark_presets``: list fields are named after
    their base fields, and ``item_list_length`` is each row's ``item_id_list`` length."""
    list_suffix = self.config["LIST_SUFFIX"]
    for field in self.inter_feat:
        if field + list_suffix in self.inter_feat:
            list_field = field + list_suffix
            setattr(self, f"{field}_list_field", list_field)
    self.set_field_property(
        self.item_list_length_field, FeatureType.TOKEN, FeatureSource.INTERACTION, 1
    )
    self.inter_feat[self.item_list_length_field] = self.inter_feat[
        self.item_id_list_field
    ].map(len)


def apply():
    from recbole.data.dataset.sequential_dataset import SequentialDataset

    SequentialDataset._benchmark_presets = _benchmark_presets
