"""Loss-weight schedules a model owns (KL warm-up), applied by a callback that ``fit`` adds itself.

A scheduled weight is a non-trainable model variable that the callback sets at the start of every
epoch; the model logs the weight it trained with as a metric (``kl_weight``), so that each epoch's
``total_loss = reconstruction_loss + kl_weight * kl_loss`` can be checked from the history alone.
Set from the epoch index, the schedule resumes where an interrupted run stopped.
"""

import keras


class KLWarmup(keras.callbacks.Callback):
    """Linear KL warm-up (Sonderby et al., 2016): the KL weight is ``beta * min(1, epoch / epochs)``.

    ``epoch`` counts from 0, so the first epoch trains the reconstruction alone and the full weight is
    reached after ``epochs`` epochs. The model's ``kl_warmup_scale`` variable is back at 1 when
    training ends, so evaluating or saving the model sees the objective it was built with.
    """

    def __init__(self, epochs):
        super().__init__()
        self.epochs = int(epochs)

    def scale(self, epoch):
        return 1.0 if self.epochs <= 0 else min(1.0, epoch / self.epochs)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.kl_warmup_scale.assign(self.scale(epoch))

    def on_train_end(self, logs=None):
        self.model.kl_warmup_scale.assign(1.0)
