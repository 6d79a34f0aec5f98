"""biobart-fairseq: BioBART (biomedical BART) as a fairseq ``--user-dir`` plugin.

``fairseq-train DATA --user-dir biobart_fairseq --task biomed_denoising --arch bart_base ...``

Importing the package applies the documented fairseq workarounds (``compat``) first and
then registers the plugin's tasks (biomed_denoising, biomed_translation, biomed_entity_linking,
bartner_ner), models (bartner; biobart for --arch biobart_base/large), criteria
(bartner_loss, fused_cross_entropy) and optimizer (torch_adamw), so the registration happens whether
fairseq imports us through ``--user-dir`` or a Python program imports us directly.
"""

from . import compat

compat.apply_all()

from .tasks import bartner_ner, biomed_denoising, biomed_translation, entity_linking  # noqa: E402,F401
from .models import bartner, biobart_transformer  # noqa: E402,F401
from .criterions import bartner_loss, fused_cross_entropy  # noqa: E402,F401  (fairseq does not auto-import criterions/)
from .optim import torch_adamw  # noqa: E402,F401
from .hub import from_pretrained  # noqa: E402,F401

__version__ = "0.1.0"
