r"""Binary user rows kept as their nonzeros, and the products a VAE needs from them.

A batch of :math:`B` users' binary rows :math:`X \in \{0,1\}^{B \times n}` has
:math:`\mathrm{nnz} = \sum_u |S_u|` nonzeros, about 0.4% of :math:`B n` at ML-20M's
shape. :class:`SparseRows` holds only those: for every nonzero its row and item, and
where each row starts. Every product of :math:`X` (or of :math:`X` with per-nonzero
values) with an item-major table :math:`T` (``n_items x k``) is one
``embedding_bag`` sum over each row's items, which reads only the :math:`|S_u|` rows
of :math:`T` a user has; its gradient scatters into those rows only. The dense
product reads all :math:`n` rows for every user.
"""
from typing import NamedTuple

import torch
import torch.nn.functional as F
from recbole.model.abstract_recommender import AutoEncoderMixin

from recbole_anchor.config_checks import fail


class SparseRows(NamedTuple):
    r"""Binary rows :math:`X` (B x ``n_items``) as their nonzeros.

    Attributes:
        user (LongTensor): (nnz,) the row (0..B-1) of each nonzero, in row order.
        items (LongTensor): (nnz,) the item of each nonzero.
        offsets (LongTensor): (B,) where each row's nonzeros start in ``items``.
        counts (Tensor): (B,) float, :math:`|S_u|`, the nonzeros of each row.
        n_items (int): number of columns.
    """

    user: torch.Tensor
    items: torch.Tensor
    offsets: torch.Tensor
    counts: torch.Tensor
    n_items: int

    @classmethod
    def from_csr(cls, row_ptr, row_items, user, n_items):
        """The rows of users ``user`` (B,) of a CSR matrix (``row_ptr``, ``row_items``),
        gathered with batched indexing, no loop over users."""
        user = user.to(row_ptr.device)
        start, end = row_ptr[user], row_ptr[user + 1]
        counts = end - start
        offsets = torch.cumsum(counts, 0) - counts
        nnz = int(counts.sum())
        row_of = torch.repeat_interleave(
            torch.arange(len(user), device=user.device), counts, output_size=nnz
        )
        position = torch.arange(nnz, device=user.device) - offsets[row_of]
        items = row_items[start[row_of] + position]
        return cls(row_of, items, offsets, counts.to(torch.float32), int(n_items))

    @classmethod
    def from_dense(cls, dense):
        """The nonzeros of binary rows ``dense`` (B x n_items), in row order."""
        user, items = dense.nonzero(as_tuple=True)
        counts = torch.bincount(user, minlength=dense.shape[0])
        offsets = torch.cumsum(counts, 0) - counts
        return cls(user, items, offsets, counts.to(torch.float32), int(dense.shape[1]))

    @property
    def n_rows(self):
        """B, the number of rows (``len()`` stays the tuple's, so ``_replace`` works)."""
        return len(self.offsets)

    def to_dense(self, dtype=torch.float32):
        """The dense binary rows (B x n_items)."""
        dense = torch.zeros(self.n_rows, self.n_items, dtype=dtype, device=self.items.device)
        dense[self.user, self.items] = 1.0
        return dense

    def l2_normalized_values(self):
        r"""The nonzeros of :math:`x / \lVert x\rVert_2`: :math:`1/\sqrt{|S_u|}` for each
        of user u's items (as ``F.normalize`` of the dense row computes it)."""
        return (1.0 / self.counts.sqrt())[self.user]

    def times(self, table, values=None):
        r""":math:`X T` (B x k) for an item-major ``table`` :math:`T` (n_items x k), with
        the nonzeros of :math:`X` set to ``values`` (nnz,) when given, else 1."""
        return F.embedding_bag(
            self.items, table, self.offsets, mode="sum", per_sample_weights=values
        )

    def gather(self, dense):
        """The entries of ``dense`` (B x n_items) at the nonzeros, (nnz,)."""
        return dense[self.user, self.items]


def register_user_rows(module, dataset):
    """Keep ``dataset``'s training interactions on ``module`` as CSR buffers
    ``_row_ptr`` (n_users + 1,) and ``_row_items`` (nnz,), moved with the module to its
    device, not saved with its weights; :func:`user_rows` reads them."""
    matrix = dataset.inter_matrix(form="csr").astype("float32")
    matrix.sum_duplicates()
    module.register_buffer(
        "_row_ptr", torch.from_numpy(matrix.indptr.astype("int64")), persistent=False
    )
    module.register_buffer(
        "_row_items", torch.from_numpy(matrix.indices.astype("int64")), persistent=False
    )


def user_rows(module, user):
    """The binary training rows of users ``user`` (B,) kept by
    :func:`register_user_rows`, as :class:`SparseRows`."""
    return SparseRows.from_csr(module._row_ptr, module._row_items, user, module.n_items)


def item_major(layer):
    r"""Store a first layer's weight :math:`W_1` (hidden x n_items) item by item (its
    transpose contiguous): same values, same shape and state-dict entry, but the rows
    of :math:`W_1^\top` a sparse input reads lie together in memory."""
    weight = layer.weight
    layer.weight = torch.nn.Parameter(weight.detach().t().contiguous().t(),
                                      requires_grad=weight.requires_grad)


class SparseInput(AutoEncoderMixin):
    r"""The ``sparse_input`` key of an autoencoder recommender that reads each user's
    binary training row :math:`x_u`.

    A model's training rows are kept once, as CSR buffers (:func:`register_user_rows`),
    through RecBole's own hook ``build_histroy_items``, which RecBole's models and
    fold-in call: RecBole's padded ``n_users x max|S_u|`` history matrix (at ML-20M's
    shape larger than the interactions themselves) is never built.
    :meth:`get_rating_matrix` densifies the rows of a batch from them, so RecBole code
    that reads dense rows (RecVAE's loss and ``predict``, the diagnostics) reads the
    same rows. With ``sparse_input: True`` :meth:`user_rows` hands the model the rows
    as :class:`SparseRows` and its first layers are stored item-major
    (:func:`item_major`); with ``False``, dense rows.
    """

    def init_sparse_input(self, config, first_layers):
        """Read ``sparse_input`` (default True); store ``first_layers``, the layers
        that read :math:`x_u`, item-major when it is on."""
        self.sparse_input = config["sparse_input"] is not False
        if self.sparse_input:
            for layer in first_layers:
                item_major(layer)

    @staticmethod
    def check_sparse_input(config):
        """Raise InvalidConfigError unless ``sparse_input`` is True, False or unset."""
        if config["sparse_input"] not in (None, True, False):
            fail(config, "sparse_input", "True or False")

    def build_histroy_items(self, dataset):  # RecBole's spelling of the hook
        """Keep ``dataset``'s training rows as CSR buffers (:func:`register_user_rows`)."""
        register_user_rows(self, dataset)

    def get_rating_matrix(self, user):
        r"""Binary rows :math:`x_u` (B x n_items) of the users ``user`` (B,), built
        from the CSR buffers with one scatter, no loop over users."""
        return user_rows(self, user).to_dense()

    def user_rows(self, user):
        """The binary rows of ``user`` (B,) as the model reads them: sparse
        (:class:`SparseRows`) with ``sparse_input``, else dense (B x n_items)."""
        if self.sparse_input:
            return user_rows(self, user)
        return self.get_rating_matrix(user)
