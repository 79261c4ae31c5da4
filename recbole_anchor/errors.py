"""User-facing errors.

Every error a user can cause by bad input (a model name, a dataset path, a config
value, a checkpoint) is one of these. Each message is one line that names the
problem and the fix; the command-line entry points print it without a traceback.
"""


class RecBoleAnchorError(Exception):
    """Base class of the errors the command line reports as one line."""


class UnknownModelError(RecBoleAnchorError, ValueError):
    """A model name that is neither a plugin model nor a RecBole model."""


class DatasetNotFoundError(RecBoleAnchorError, FileNotFoundError):
    """The atomic files of a dataset are not where the config says they are."""


class DatasetDownloadError(DatasetNotFoundError):
    """A dataset's atomic files are missing and downloading them failed."""


class MalformedDatasetError(RecBoleAnchorError, ValueError):
    """An atomic file exists but cannot be read as RecBole atomic data."""


class InvalidConfigError(RecBoleAnchorError, ValueError):
    """A config value is outside its valid range or of the wrong type."""


class CheckpointError(RecBoleAnchorError, ValueError):
    """A checkpoint file cannot be loaded safely."""


class TrainingDivergedError(RecBoleAnchorError, ArithmeticError):
    """The training loss or the weights became NaN or Inf."""


class UnsupportedModelError(RecBoleAnchorError, ValueError):
    """A model that cannot be used with the chosen evaluation protocol."""


class DiagnosticsError(RecBoleAnchorError, ValueError):
    """The latent diagnostics cannot run: a model without a Gaussian posterior,
    checkpoints that do not match, or a missing optional library."""


class StudyStorageError(RecBoleAnchorError):
    """A tuning study's storage cannot be opened: a bad URL, a missing database
    driver or an unreachable server."""
