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
