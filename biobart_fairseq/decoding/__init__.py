"""Decoding helpers: CPU-correct n-gram blocking, the compact KB trie and constrained beam search."""
