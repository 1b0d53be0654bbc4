"""keraszoo's own exceptions, in one place (no TensorFlow import).

:class:`UsageError` is a bad command line, configuration or argument value, found before any work is
done; the command line reports it without a traceback (exit status 2). Its subclasses say more.
"""


class UsageError(ValueError):
    """A bad command line or configuration (reported without a traceback)."""


class ModelBuildError(UsageError):
    """The configuration cannot be built for the data (e.g. a conv stack too deep for 28x28 images).

    An experiment records such a run as skipped, with this message as the reason.
    """


# --------------------------------------------------------------------------- the errors of a training run
class BackupMismatchError(UsageError):
    """A backup folder holds a run of another configuration."""


class BackupDamagedError(UsageError):
    """The latest backup of a run cannot be read (a damaged or truncated file)."""


class CheckpointWriteError(UsageError, OSError):
    """A backup or the final model could not be written (a full disk, a file-size limit, no permission).

    Also an ``OSError``: ``errno`` and ``filename`` are those of the failed write.
    """

    def __init__(self, message, *, errno=None, filename=None):
        super().__init__(message)
        self.errno = errno
        self.filename = filename

    def __str__(self):
        return str(self.args[0]) if self.args else ""


class TrainingDivergedError(UsageError):
    """The training loss became NaN or infinite; the run stopped (nothing was saved as the result)."""

    def __init__(self, message, *, epoch=None, step=None, global_step=None, backup_step=None):
        super().__init__(message)
        #: 1-based epoch, 1-based step in that epoch and global step of the first non-finite loss.
        self.epoch, self.step, self.global_step = epoch, step, global_step
        #: global step of the last good backup (0: none).
        self.backup_step = backup_step
