"""Named arrays of a MATLAB ``.mat`` (v5, read by scipy, or v7.3, which is HDF5) or an ``.h5`` file.

The one reader of the MATLAB-era annotation and prediction files (MPII's ``gt_valid.mat`` and prediction
files in :mod:`hourglass.data.mpii_files`, LSP's ``joints.mat`` in :mod:`hourglass.data.lsp`). Arrays come back
in MATLAB's axis order whichever way the file stores them: a v7.3 file is column-major, so its axes are reversed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hourglass.errors import DataError

_MAT73_MAGIC = b"MATLAB 7.3 MAT-file"


def read_arrays(path: Path, keys: tuple[str, ...], what: str) -> dict[str, Any]:
    """The arrays named ``keys`` that ``path`` holds (absent ones are left out); ``what`` names the file's role
    in errors (``"ground truth"``, ``"LSP annotation"``).

    Raises:
        FileNotFoundError: no such file.
        DataError: not a ``.mat``/``.h5`` file, or one that cannot be read; the message names the file.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what} file")
    suffix = path.suffix.lower()
    if suffix not in (".mat", ".h5", ".hdf5"):
        raise DataError(f"{path}: {what} must be a .mat or .h5 file, got {suffix or 'no extension'!r}")
    with open(path, "rb") as f:
        head = f.read(len(_MAT73_MAGIC))
    try:
        if suffix == ".mat" and head != _MAT73_MAGIC:
            import scipy.io

            data = scipy.io.loadmat(str(path), variable_names=list(keys))
            return {k: np.asarray(v) for k, v in data.items() if k in keys}
        import h5py

        with h5py.File(path, "r") as f:
            out = {k: np.asarray(f[k]) for k in keys if k in f and isinstance(f[k], h5py.Dataset)}
        if suffix == ".mat":  # MATLAB v7.3 stores arrays column-major: reverse the axes
            out = {k: v.T for k, v in out.items()}
        return out
    except (OSError, ValueError, TypeError, IndexError, KeyError, NotImplementedError) as err:
        raise DataError(f"{path}: not a readable {what} file ({err})") from err
