"""The baseline the compact trie is measured against: a GENRE-style trie with one nested
Python dict per node (written for the comparison; used by benchmarks/trie_scale.py,
benchmarks/el_decode.py and tests/test_trie.py)."""


def dict_trie(seqs):
    """Nested-dict trie of the token sequences."""
    root = {}
    for s in seqs:
        node = root
        for t in s:
            node = node.setdefault(t, {})
    return root


def dict_get(root, prefix):
    """Tokens allowed after ``prefix`` (walked from the root every call, as GENRE does)."""
    node = root
    for t in prefix:
        node = node.get(t)
        if node is None:
            return []
    return list(node.keys())
