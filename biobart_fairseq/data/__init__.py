"""Readers and fairseq dataset wrappers."""
