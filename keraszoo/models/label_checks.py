"""The label check of a conditional variant's ``tf.data`` datasets, batch by batch inside the pipeline
(``ConditionalVAE.fit`` / ``evaluate``), and its error turned back into a ``ValueError`` naming the labels."""

import contextlib
import re
import sys

#: marks a failed label check inside a tf.data pipeline (see :func:`checked_label_dataset`).
_MARK = "@@keraszoo-label-check@@"
_ASSERTED = re.compile(re.escape(_MARK) + r"\] \[(?P<who>[^\]]*)\] \[(?P<lo>[^\]]*)\] \[(?P<hi>[^\]]*)\]")


@contextlib.contextmanager
def label_errors(num_classes):
    """Turns a failed dataset label check (raised inside TensorFlow) back into a ValueError."""
    try:
        yield
    except Exception as err:
        found = _ASSERTED.search(str(err))
        if not found:
            raise
        raise ValueError(f"{found['who']} expects integer class labels in [0, {num_classes}); a batch of the dataset "
                         f"holds labels in [{found['lo']}, {found['hi']}].") from None


def checked_label_dataset(ds, who, num_classes):
    """``ds`` of ``(x, y, ...)`` batches with an assertion that every label ``y`` lies in ``[0, num_classes)``."""
    tf = sys.modules["tensorflow"]

    def check(x, y, *rest):
        lo, hi = tf.reduce_min(y), tf.reduce_max(y)
        verdict = tf.raw_ops.Assert(condition=tf.logical_and(lo >= 0, hi < num_classes), summarize=1,
                                    data=[tf.constant(_MARK), tf.constant(who), lo, hi, tf.constant(_MARK)])
        with tf.control_dependencies([verdict]):
            return (x, tf.identity(y)) + rest

    return ds.map(check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
