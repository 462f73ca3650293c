"""Expected errors of the library: one hierarchy under :class:`HourglassError`.

Each is a ``ValueError`` (bad input, not a bug; :class:`MissingExtraError` is an ``ImportError`` too); its
message names the file, record, key or tensor and what was expected. The command line turns these (and
only these, with ``OSError`` for files that cannot be read or written) into one line on stderr; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class HourglassError(ValueError):
    """Base of every expected error raised by ``hourglass``."""


class DataError(HourglassError):
    """Bad data or settings; the message names the file, the record index or the array, and what was expected."""


class ConfigError(HourglassError):
    """A setting that does not fit: a recipe key, an override, a command option or a function argument
    such as a model, back-end or format name; the message names the setting and what was expected."""


class InputError(HourglassError):
    """An array, tensor or image of the wrong shape, type or range; the message names it and the expected shape."""


class CheckpointError(HourglassError):
    """A checkpoint that cannot be used; the message names the file and what was expected."""


class ExportError(HourglassError):
    """An export that failed or did not reproduce the eager model; names the file and the difference."""


class OutOfSpaceError(HourglassError):
    """A write that failed for lack of space (a full disk, or the file-size limit reached); the message names
    the file and the free space left, and the previous file at that path is left as it was."""


class TrainingDiverged(HourglassError):
    """The loss became NaN or infinite; the last good checkpoint is left as it was."""


class MissingExtraError(ImportError, HourglassError):
    """An optional package is not installed; the message names the extra that provides it
    (:func:`hourglass.extras.require_extra`).

    An ``ImportError`` (so ``except ImportError`` sees it) and an expected error the CLI prints as one line.
    """


class FetchError(CheckpointError):
    """Published weights that could not be fetched or failed their check; the message names the URL (or the
    table name) and the cause, and, when nothing could be fetched, the path where a copy can be put by hand."""
