"""The user-facing error types: one leaf module that every layer may import.

``UserError`` is the base of every problem the user caused and can fix (a bad
option value, a missing or unreadable file, a checkpoint of another model, a
run folder that does not fit). Its message is one line naming the problem;
the ``stegafast`` command prints it as ``stegafast: error: <message>`` and
exits with status 2, without a traceback. Each layer raises its own subclass,
so a command needs no ``except X: raise UserError(str(exc))`` to report it:

* ``DataError`` (``stegafast.data``): image files and folders;
* ``CheckpointError`` (``stegafast.train``): checkpoint files;
* ``RunDirError`` (``stegafast.train``): run folders;
* ``DeviceError`` (``stegafast.device``): a ``--device`` value this machine cannot serve;
* ``DivergenceError`` (``stegafast.train``): a training whose loss became NaN or infinite;
* ``OutputError`` (``stegafast.io``): a file that cannot be written (a full disk, a
  read-only or missing folder, an output that would replace an input);
* ``CorruptStreamError`` (``stegafast.entropy``): a coded stream that decodes to values
  no encoder writes (out of range, or non-finite once through the network).

``CheckpointError``, ``RunDirError``, ``DeviceError``, ``DivergenceError`` and ``CorruptStreamError`` are also
``ValueError``\\s, as they were before this module existed; ``OutputError`` is
also an ``OSError``, so code that caught a failed write as one still does. This module imports nothing from stegafast.
"""

from __future__ import annotations

__all__ = [
    "UserError",
    "DataError",
    "CheckpointError",
    "RunDirError",
    "DeviceError",
    "DivergenceError",
    "OutputError",
    "CorruptStreamError",
]


class UserError(Exception):
    """A mistake the user can fix (bad file, bad value): reported by the command as
    one error line and exit status 2, without a traceback."""


class DataError(UserError):
    """A missing or empty image folder, or a file that is not a readable image.

    The message names the path and the problem in one line. Raised inside a
    DataLoader worker it reaches the main process as a DataError whose message
    also holds the worker's traceback; its last line is the original message.
    """


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be written or used: unsafe contents, a damaged
    or foreign file, or one saved by another task."""


class RunDirError(UserError, ValueError):
    """A run folder that does not fit the request: resuming where nothing was
    saved, starting afresh over a saved run, continuing a run of another task,
    or loading a model from a folder that holds no checkpoint."""


class DeviceError(UserError, ValueError):
    """A device name that is not auto, cpu, cuda or cuda:N, or a GPU that is not there."""


class OutputError(UserError, OSError):
    """A file that cannot be written, or must not be: a full disk, a read-only,
    missing or unwritable folder, a folder where a file is wanted (or the
    reverse), or an output that names one of the command's inputs. The message
    names the path and the reason in one line."""


class DivergenceError(UserError, ValueError):
    """A model whose numbers became NaN or infinite: raised by the training engine when a
    run's loss or weights do (a learning rate too high, for one; the message names the
    step and the last good checkpoint, which is kept), and by the layers that find such
    values where they need finite ones (an entropy model's probabilities)."""


class CorruptStreamError(UserError, ValueError):
    """A coded stream that passed its file's checks (a recomputed checksum) but decodes
    to what no encoder writes: a symbol out of range, a stream longer than its symbols
    can fill, or non-finite values once through the network. The message starts
    with "corrupt stream" and names what was found."""
