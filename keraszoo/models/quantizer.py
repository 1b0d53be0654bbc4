"""Vector quantization: a codebook, its nearest-neighbour lookup and its moving-average update (VQ-VAE)."""

import keras
from keras import layers
from keras import ops

from keraszoo.models.registry import keraszoo_export

CODEBOOK_UPDATES = ("loss", "ema")


@keraszoo_export()
class VectorQuantizer(layers.Layer):
    """The codebook ``e`` (``num_embeddings`` vectors of ``embedding_dim``) and its nearest-neighbour lookup.

    With ``codebook_update="ema"`` the codebook is not trained by gradients but
    set after each training step from exponential moving averages (the paper's
    appendix A.1): per code ``k``, with ``n_k`` the number of encoder vectors
    assigned to it in the batch and ``s_k`` their sum,
    ``N_k <- decay N_k + (1 - decay) n_k``, ``m_k <- decay m_k + (1 - decay) s_k``,
    ``e_k = m_k / N~_k`` with the Laplace-smoothed counts
    ``N~_k = (N_k + eps) / (n + K eps) * n``, ``n = sum_k N_k``. ``N`` and ``m``
    are non-trainable weights (saved and loaded with the model), started as one
    pseudo-observation of each initial code (``N_k = 1``, ``m_k = e_k``), so an
    unused code stays where it is instead of being divided by ``eps``.

    ``restart_threshold > 0`` (EMA only) adds random restarts (Dhariwal et al.,
    2020, "Jukebox"): after the step, every code with ``N_k < restart_threshold``
    is moved to an encoder vector of the batch drawn at random (``m_k`` = that
    vector, ``N_k = 1``), so that codes the encoder has left behind come back
    into use. Off by default (the paper has no restarts).
    """

    def __init__(self, num_embeddings, embedding_dim, codebook_update="loss", decay=0.99, epsilon=1e-5,
                 restart_threshold=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.codebook_update = codebook_update
        self.decay = float(decay)
        self.epsilon = float(epsilon)
        self.restart_threshold = float(restart_threshold)
        self.seed = seed
        ema = codebook_update == "ema"
        limit = 1.0 / self.num_embeddings
        # "mean" aggregation: under tf.distribute every replica's EMA step is averaged.
        aggregation = "mean" if ema else "none"
        self.codebook = self.add_weight(
            shape=(self.num_embeddings, self.embedding_dim), name="codebook", trainable=not ema,
            initializer=keras.initializers.RandomUniform(-limit, limit), aggregation=aggregation)
        if ema:
            self.ema_cluster_size = self.add_weight(shape=(self.num_embeddings,), name="ema_cluster_size",
                                                    initializer="ones", trainable=False, aggregation=aggregation)
            self.ema_embedding_sum = self.add_weight(shape=(self.num_embeddings, self.embedding_dim),
                                                     name="ema_embedding_sum", initializer="zeros",
                                                     trainable=False, aggregation=aggregation)
            self.ema_embedding_sum.assign(ops.copy(self.codebook.value))  # a copy: JAX must not share the buffer
            if self.restart_threshold > 0:
                self.restart_seed = keras.random.SeedGenerator(seed, name="restart_seed")
        self.built = True

    def nearest(self, z):
        """Index of the nearest code (Euclidean) of every vector of ``z`` ``(..., D)``: int32 ``z.shape[:-1]``."""
        flat = ops.cast(ops.reshape(z, (-1, self.embedding_dim)), "float32")
        e = ops.cast(self.codebook.value, "float32")
        distances = (ops.sum(ops.square(flat), axis=1, keepdims=True) - 2.0 * ops.matmul(flat, ops.transpose(e))
                     + ops.sum(ops.square(e), axis=1)[None, :])
        indices = ops.cast(ops.argmin(distances, axis=1), "int32")
        return ops.reshape(indices, (-1,) + tuple(z.shape[1:-1]))

    def lookup(self, indices, dtype="float32"):
        """The code vectors ``e[indices]``: shape ``indices.shape + (D,)``."""
        return ops.cast(ops.take(self.codebook.value, ops.cast(indices, "int32"), axis=0), dtype)

    def statistics(self, indices):
        """``(perplexity, usage)`` of the codes used in ``indices``: ``exp(H(p))`` of their frequencies, and the
        fraction of the codebook used at least once."""
        counts = ops.sum(ops.one_hot(ops.reshape(indices, (-1,)), self.num_embeddings, dtype="float32"), axis=0)
        p = counts / ops.maximum(ops.sum(counts), 1.0)
        perplexity = ops.exp(-ops.sum(p * ops.log(ops.maximum(p, 1e-12))))
        usage = ops.mean(ops.cast(counts > 0, "float32"))
        return perplexity, usage

    def ema_update(self, z, indices):
        """One moving-average step of the codebook from the encoder vectors ``z`` and their nearest codes."""
        flat = ops.stop_gradient(ops.cast(ops.reshape(z, (-1, self.embedding_dim)), "float32"))
        onehot = ops.one_hot(ops.reshape(indices, (-1,)), self.num_embeddings, dtype="float32")
        d = self.decay
        size = d * self.ema_cluster_size.value + (1.0 - d) * ops.sum(onehot, axis=0)
        total = d * self.ema_embedding_sum.value + (1.0 - d) * ops.matmul(ops.transpose(onehot), flat)
        if self.restart_threshold > 0:
            count = ops.cast(ops.shape(flat)[0], "float32")
            picks = ops.cast(keras.random.uniform((self.num_embeddings,), seed=self.restart_seed) * count, "int32")
            fresh = ops.take(flat, ops.minimum(picks, ops.cast(count, "int32") - 1), axis=0)
            dead = size < self.restart_threshold
            total = ops.where(dead[:, None], fresh, total)
            size = ops.where(dead, ops.ones_like(size), size)
        self.ema_cluster_size.assign(size)
        self.ema_embedding_sum.assign(total)
        # Read back: under tf.distribute these are the replicas' averages.
        size, total = self.ema_cluster_size.value, self.ema_embedding_sum.value
        n = ops.sum(size)
        smoothed = (size + self.epsilon) / (n + self.num_embeddings * self.epsilon) * n
        self.codebook.assign(total / smoothed[:, None])

    def get_config(self):
        config = super().get_config()
        config.update({"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim,
                       "codebook_update": self.codebook_update, "decay": self.decay, "epsilon": self.epsilon,
                       "restart_threshold": self.restart_threshold, "seed": self.seed})
        return config
