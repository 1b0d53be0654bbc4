"""The autoencoder variants of keraszoo, each a serializable ``keras.Model``.

>>> from keraszoo.models import VAE
>>> model = VAE(input_shape=(28, 28, 1), latent_dim=16)
>>> sorted(list_variants())
['aae', 'ae', 'cae', 'cvae', 'dae', 'hvae', 'iwae', 'sae', 'vae', 'vqvae', 'wae']
"""

from keraszoo.models.adversarial import AdversarialAutoEncoder
from keraszoo.models.autoencoder import AutoEncoder
from keraszoo.models.base import BaseAutoEncoder
from keraszoo.models.contractive import ContractiveAutoEncoder
from keraszoo.models.cvae import ConditionalVAE
from keraszoo.models.denoising import DenoisingAutoEncoder
from keraszoo.models.hierarchical_vae import HierarchicalVAE
from keraszoo.models.iwae import IWAE
from keraszoo.models.registry import create_model
from keraszoo.models.registry import get_variant
from keraszoo.models.registry import list_presets
from keraszoo.models.registry import list_variants
from keraszoo.models.registry import resolve_preset
from keraszoo.models.sparse import SparseAutoEncoder
from keraszoo.models.vae import VAE
from keraszoo.models.vqvae import VQVAE
from keraszoo.models.wae import WassersteinAutoEncoder

# One import line per variant above; the public names follow from the registry.
__all__ = sorted(cls.__name__ for cls in list_variants().values()) + [
    "BaseAutoEncoder",
    "create_model",
    "get_variant",
    "list_presets",
    "list_variants",
    "resolve_preset",
]
