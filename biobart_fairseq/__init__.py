"""biobart-fairseq: BioBART (biomedical BART) as a fairseq ``--user-dir`` plugin.

``fairseq-train DATA --user-dir biobart_fairseq --task biomed_denoising --arch bart_base ...``

Registration.  ``register()`` applies the documented fairseq workarounds (``compat``) and then
registers the plugin's tasks (biomed_denoising, biomed_translation, biomed_entity_linking,
bartner_ner), models (bartner; biobart for --arch biobart_base/large), criteria (bartner_loss,
fused_cross_entropy) and optimizer (torch_adamw).  Importing the package calls it, so
``--user-dir biobart_fairseq`` and ``import biobart_fairseq`` both register everything.

A light start for the commands.  Registering imports torch and fairseq (3-4 s), which the data
and scoring commands (biobart-prepare-*, biobart-score, biobart-ner-score, biobart-tables,
biobart-results, every ``--help``) never use.  Importing the package therefore leaves
registration for later in exactly two cases, both of which import the package only on the way
to a module of ``biobart_fairseq.cli``:

* a console script is starting: every ``biobart-*`` script enters through the top-level
  ``biobart_launch`` module, which sets ``biobart_launch.starting_command`` while it imports the
  command's module;
* ``python -m biobart_fairseq.cli.<command>``: Python imports the parent packages while
  ``sys.argv[0]`` is still ``"-m"`` (documented for the ``-m`` switch).

Commands that load a model or use a registered component call ``register()`` first (it is
idempotent).  Why not rely on fairseq: ``fairseq.utils.import_user_module`` skips a ``--user-dir``
package that is already in ``sys.modules``, so a lightly imported package must register itself.
The library modules the light commands import (``data/``, ``metrics/``, ``results``,
``paper_tables``) import torch and fairseq only inside the functions that need them.
"""

import sys

__version__ = "0.1.0"

_registered = False


def register():
    """Apply the fairseq workarounds and register every plugin component with fairseq (idempotent)."""
    global _registered
    if _registered:
        return
    from . import compat

    compat.apply_all()
    from .tasks import bartner_ner, biomed_denoising, biomed_translation, entity_linking  # noqa: F401
    from .models import bartner, biobart_transformer  # noqa: F401
    from .criterions import bartner_loss, fused_cross_entropy  # noqa: F401  (fairseq does not auto-import criterions/)
    from .optim import torch_adamw  # noqa: F401

    _registered = True


def _starting_command():
    """True when this import is only the way to a command's module (see the module docstring)."""
    launcher = sys.modules.get("biobart_launch")
    if launcher is not None and getattr(launcher, "starting_command", False):
        return True
    return sys.argv[:1] == ["-m"]


def __getattr__(name):
    # from_pretrained stays importable from the package without importing fairseq at start-up.
    if name == "from_pretrained":
        register()
        from .hub import from_pretrained

        return from_pretrained
    if name == "load":  # a trained model for the user's own text: link / tag / generate
        from .inference.api import load

        return load
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if not _starting_command():
    register()
