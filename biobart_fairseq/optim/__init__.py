"""Optimizers registered by the plugin (imported by ``biobart_fairseq/__init__.py``)."""
