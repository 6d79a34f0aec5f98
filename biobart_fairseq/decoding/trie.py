"""A compact prefix trie over token-id sequences, stored as two flat numpy arrays.

Why not GENRE's nested-dict trie: a Python dict per node costs ~200 bytes, i.e. about
1.4 kB per knowledge-base name, so a UMLS-sized KB (millions of names) needs gigabytes
and its pickle needs a raised recursion limit.  Here the trie is in CSR form with nodes
numbered breadth-first:

* ``tokens[e]`` is the token on edge ``e``; the edge leads to node ``e + 1`` (the root is
  node 0 and every other node has exactly one incoming edge, so with breadth-first
  numbering and edges sorted by (parent, token) the child id is implicit);
* ``offsets[v]:offsets[v + 1]`` are the outgoing edges of node ``v``, tokens ascending.

That is 4 bytes (int32 offset) + 2 bytes (uint16 token, when every id < 65536, true
for BART's 50,265-token vocabulary) per node, ~20 bytes per name on KB-like data.  A child
is found by binary search (``bisect`` on a memoryview, C speed), and the decoder keeps a
node per hypothesis (:meth:`child`), so a step costs one search instead of a walk from
the root.  ``save``/``load`` use ``np.savez`` with ``allow_pickle=False``.
"""

from __future__ import annotations

import bisect
from itertools import chain
from typing import Iterable, Iterator, List, Sequence

import numpy as np

ROOT = 0
DONE = -2  # the state after a sequence's end marker: complete, nothing may follow
WIDE = 64  # nodes with at least this many children get a dict (see Trie._wide_node)
_FORMAT_VERSION = 1


class Trie:
    """Prefix trie over token-id sequences.

    ``Trie(sequences)`` stores every sequence (duplicates collapse); ``get(prefix)`` returns
    the sorted list of tokens that may follow ``prefix`` (``[]`` when ``prefix`` is not a
    path of the trie, like GENRE's ``Trie.get``).  Sequences are usually ``name + [eos]``,
    so ``eos`` is allowed exactly where a complete name ends.

    When every sequence ends with the same token and that token occurs nowhere else (the
    ``eos`` of ``name + [eos]``), it is stored as one bit per node ("a sequence ends
    here") instead of a leaf node; ``get``/``children`` add it back, so this is invisible
    to callers except that the cursor reaches :data:`DONE` after it.
    """

    def __init__(self, sequences: Iterable[Sequence[int]] = ()):
        offsets, tokens, final, end, n_seq, max_len = _build(sequences)
        self._set_arrays(offsets, tokens, final, end, n_seq, max_len)

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, offsets, tokens, final=None, end_token=-1, num_sequences=-1, max_length=-1) -> "Trie":
        self = cls.__new__(cls)
        if offsets.ndim != 1 or tokens.ndim != 1 or len(offsets) != len(tokens) + 2:
            raise ValueError(f"inconsistent trie arrays: {len(offsets)} offsets for {len(tokens)} edges")
        if (final is None) != (end_token < 0):
            raise ValueError("the end-marker bits and the end token go together")
        self._set_arrays(offsets, tokens, final, end_token, num_sequences, max_length)
        return self

    def _set_arrays(self, offsets, tokens, final, end, n_seq, max_len):
        self.offsets = offsets
        self.tokens = tokens
        self.final = final
        self.end_token = int(end)
        self.num_sequences = int(n_seq)
        self.max_length = int(max_len)  # longest stored sequence (end marker included)
        # memoryviews: bisect and indexing on them run in C and return Python ints
        self._off = memoryview(offsets)
        self._tok = memoryview(tokens)
        self._fin = memoryview(final) if final is not None else None
        # Nodes with many children (the root, frequent first words) are hit by most
        # queries; for them a lazily built dict (token -> node) and list of children beat a
        # binary search and a fresh ``tolist()``.  There are few such nodes, so little memory.
        self._wide = {}

    def _wide_node(self, node):
        hit = self._wide.get(node)
        if hit is None:
            lo, hi = self._off[node], self._off[node + 1]
            toks = self._tok[lo:hi].tolist()
            kids = list(toks)
            if self._is_final(node):
                bisect.insort(kids, self.end_token)
            hit = self._wide[node] = (dict(zip(toks, range(lo + 1, hi + 1))), kids)
        return hit

    # -- persistence (no pickle) ----------------------------------------------------------
    def save(self, path) -> None:
        meta = np.array([_FORMAT_VERSION, self.num_sequences, self.end_token, self.max_length], dtype=np.int64)
        final = self.final if self.final is not None else np.zeros(0, dtype=np.uint8)
        with open(path, "wb") as f:  # a file object, so numpy does not append ".npz"
            np.savez(f, offsets=self.offsets, tokens=self.tokens, final=final, meta=meta)

    @classmethod
    def load(cls, path) -> "Trie":
        with np.load(path, allow_pickle=False) as z:
            meta = z["meta"]
            if int(meta[0]) != _FORMAT_VERSION:
                raise ValueError(f"{path}: trie format {int(meta[0])}, expected {_FORMAT_VERSION}")
            end = int(meta[2])
            return cls.from_arrays(z["offsets"], z["tokens"], z["final"] if end >= 0 else None, end, int(meta[1]),
                                   int(meta[3]))

    # -- queries ----------------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        return len(self.offsets) - 1

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays that make up the loaded trie."""
        return int(self.offsets.nbytes + self.tokens.nbytes + (self.final.nbytes if self.final is not None else 0))

    def __len__(self) -> int:
        return self.num_sequences

    def _is_final(self, node: int) -> bool:
        return self._fin is not None and (self._fin[node >> 3] >> (7 - (node & 7))) & 1 == 1

    def child(self, node: int, token: int) -> int:
        """The node reached from ``node`` by ``token``: -1 when not allowed, :data:`DONE`
        after the end marker."""
        if node < 0:
            return -1
        if token == self.end_token:
            return DONE if self._is_final(node) else -1
        lo, hi = self._off[node], self._off[node + 1]
        if hi - lo >= WIDE:
            return self._wide_node(node)[0].get(token, -1)
        i = bisect.bisect_left(self._tok, token, lo, hi)
        if i < hi and self._tok[i] == token:
            return i + 1
        return -1

    def children(self, node: int) -> List[int]:
        """Sorted tokens allowed after ``node`` (``[]`` for a leaf, -1 or :data:`DONE`)."""
        if node < 0:
            return []
        lo, hi = self._off[node], self._off[node + 1]
        if hi - lo >= WIDE:
            return self._wide_node(node)[1]  # shared list: callers must not modify it
        out = self._tok[lo:hi].tolist()
        if self._fin is not None and self._is_final(node):
            bisect.insort(out, self.end_token)
        return out

    # -- vectorised queries (a beam search asks for hundreds of nodes per step) -------------
    def _final_many(self, nodes: np.ndarray) -> np.ndarray:
        ok = nodes >= 0
        if self.final is None:
            return np.zeros(len(nodes), dtype=bool)
        n = np.where(ok, nodes, 0)
        return ok & (((self.final[n >> 3] >> (7 - (n & 7))) & 1) == 1)

    def children_many(self, nodes: np.ndarray):
        """Allowed next tokens of every node at once: ``(owner, tokens, children)`` int64
        arrays, where ``tokens[k]`` may follow ``nodes[owner[k]]`` and leads to node
        ``children[k]`` (:data:`DONE` after the end marker); nodes < 0 have none."""
        nodes = np.asarray(nodes, dtype=np.int64)
        valid = nodes >= 0
        n = np.where(valid, nodes, 0)
        lo = np.where(valid, self.offsets[n], 0).astype(np.int64)
        lens = np.where(valid, self.offsets[n + 1], 0).astype(np.int64) - lo
        owner = np.repeat(np.arange(len(nodes)), lens)
        starts = np.cumsum(lens) - lens
        edges = np.arange(int(lens.sum())) - np.repeat(starts, lens) + np.repeat(lo, lens)
        toks = self.tokens[edges].astype(np.int64)
        kids = edges + 1  # breadth-first numbering: edge e leads to node e + 1
        if self.end_token >= 0:
            fin = np.flatnonzero(self._final_many(nodes))
            owner = np.concatenate([owner, fin])
            toks = np.concatenate([toks, np.full(len(fin), self.end_token, dtype=np.int64)])
            kids = np.concatenate([kids, np.full(len(fin), DONE, dtype=np.int64)])
        return owner, toks, kids

    def node_for(self, prefix: Iterable[int], node: int = ROOT) -> int:
        """Walk ``prefix`` from ``node`` (the root by default); -1 if it leaves the trie."""
        off, tok, left, end = self._off, self._tok, bisect.bisect_left, self.end_token
        for t in prefix:
            if node < 0:
                return -1
            if t == end:
                node = DONE if self._is_final(node) else -1
                continue
            lo, hi = off[node], off[node + 1]
            if hi - lo >= WIDE:
                node = self._wide_node(node)[0].get(t, -1)
                if node < 0:
                    return -1
                continue
            i = left(tok, t, lo, hi)
            if i == hi or tok[i] != t:
                return -1
            node = i + 1
        return node

    def get(self, prefix: Iterable[int]) -> List[int]:
        """Tokens allowed after ``prefix``; ``[]`` when ``prefix`` is not in the trie.

        The list may be shared with later calls (wide nodes are cached): do not modify it."""
        return self.children(self.node_for(prefix))

    def __contains__(self, sequence) -> bool:
        """True when ``sequence`` ends at a leaf: with an end marker, a stored name + eos."""
        node = self.node_for(sequence)
        if node == DONE:
            return True
        return node >= 0 and self.end_token < 0 and self._off[node] == self._off[node + 1]

    def sequences(self) -> Iterator[List[int]]:
        """Every stored sequence (as root-to-leaf paths), for tests and debugging."""
        stack = [(ROOT, [])]
        while stack:
            node, path = stack.pop()
            lo, hi = self._off[node], self._off[node + 1]
            if self._is_final(node):
                yield path + [self.end_token]
            elif lo == hi and path:
                yield path
            for e in range(hi - 1, lo - 1, -1):
                stack.append((e + 1, path + [self._tok[e]]))


def _flatten(sequences):
    seqs = sequences if isinstance(sequences, list) else list(sequences)
    lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
    flat = np.fromiter(chain.from_iterable(seqs), dtype=np.int64, count=int(lengths.sum()))
    if flat.size and (flat.min() < 0 or flat.max() >= 2**31 - 1):
        raise ValueError("token ids must be in [0, 2**31 - 1)")
    return flat, lengths


def _end_marker(flat, lengths):
    """The common last token if every sequence ends with it and it occurs nowhere else."""
    if lengths.size == 0 or lengths.min() == 0:
        return -1
    ends = flat[np.cumsum(lengths) - 1]
    end = int(ends[0])
    if (ends == end).all() and int((flat == end).sum()) == len(lengths):
        return end
    return -1


def _padded_matrix(flat, lengths):
    """(N, L) int32 matrix of the non-empty sequences, padded with -1 (sorts before any id)."""
    keep = lengths > 0
    lengths_nz = lengths[keep]
    if lengths_nz.size == 0:
        return np.zeros((0, 0), dtype=np.int32), lengths_nz
    width = int(lengths_nz.max())
    mat = np.full((len(lengths_nz), width), -1, dtype=np.int32)
    rows = np.repeat(np.arange(len(lengths_nz)), lengths_nz)
    starts = np.cumsum(lengths_nz) - lengths_nz
    cols = np.arange(len(flat)) - np.repeat(starts, lengths_nz)
    mat[rows, cols] = flat
    return mat, lengths_nz


def _build(sequences):
    """-> (offsets, tokens, final bits or None, end token or -1, number of distinct sequences,
    longest sequence)."""
    flat, lengths = _flatten(sequences)
    max_len = int(lengths.max()) if lengths.size else 0
    end = _end_marker(flat, lengths)
    root_final = False
    if end >= 0:
        # Store "a sequence ends here" as one bit per node instead of an end-marker leaf
        # node (6 bytes): with name + [eos] sequences that is one node per name saved.
        keep_tok = np.ones(len(flat), dtype=bool)
        keep_tok[np.cumsum(lengths) - 1] = False
        flat, lengths = flat[keep_tok], lengths - 1
        root_final = bool((lengths == 0).any())
    mat, row_len = _padded_matrix(flat, lengths)
    del flat
    mat, row_len, lcp = _sorted_rows(mat, row_len)
    n, width = mat.shape
    n_seq = int((lcp < width).sum()) + int(root_final) if n else int(root_final)
    tokens, parents, final_parts = _edges(mat, row_len, lcp, track_final=end >= 0)
    del mat
    n_nodes = len(tokens) + 1  # edge e leads to node e + 1
    off_dtype = np.int32 if len(tokens) < 2**31 - 1 else np.int64
    offsets = np.zeros(n_nodes + 1, dtype=off_dtype)
    np.cumsum(np.bincount(parents, minlength=n_nodes), out=offsets[1:])
    tok_dtype = np.uint16 if tokens.size == 0 or int(tokens.max()) < 2**16 else np.int32
    final = None
    if end >= 0:
        is_final = np.zeros(n_nodes, dtype=bool)
        for part in final_parts:
            is_final[part] = True
        is_final[ROOT] = root_final
        final = np.packbits(is_final)
    return offsets, tokens.astype(tok_dtype), final, end, n_seq, max_len


def _sorted_rows(mat, row_len):
    """Rows in lexicographic order, and lcp[i]: the first column where row i differs from
    row i-1 (equal rows -> width: a duplicate)."""
    n, width = mat.shape
    # lexsort's last key is the primary one.  -1 padding sorts first, so a sequence precedes
    # its extensions, as in a dictionary.
    if n:
        order = np.lexsort(mat.T[::-1])
        mat, row_len = mat[order], row_len[order]
    lcp = np.zeros(n, dtype=np.int64)
    if n > 1:
        diff = mat[1:] != mat[:-1]
        lcp[1:] = np.where(diff.any(axis=1), diff.argmax(axis=1), width)
    return mat, row_len, lcp


def _edges(mat, row_len, lcp, track_final: bool):
    """-> (token of each edge, parent node of each edge, nodes where a row ends, by depth).

    Nodes are numbered breadth-first: depth by depth, and within a depth in row order,
    which (rows being sorted) is the order of (parent, token).  So the edge list built
    depth by depth is already sorted by (parent, token) and edge e leads to node e + 1."""
    n, width = mat.shape
    tok_parts, parent_parts, final_parts = [], [], []
    next_id = 1
    prev_node = np.zeros(n, dtype=np.int64)  # node of each row at depth d-1 (root for d=0)
    for d in range(width):
        col = mat[:, d]
        rows = np.flatnonzero((lcp <= d) & (col >= 0))
        ids = np.zeros(n, dtype=np.int64)
        ids[rows] = np.arange(next_id, next_id + len(rows))
        next_id += len(rows)
        tok_parts.append(col[rows])
        parent_parts.append(prev_node[rows])
        # a row's node at depth d is its own new node or the one of the row above
        prev_node = np.maximum.accumulate(ids)
        if track_final:
            final_parts.append(prev_node[row_len == d + 1])
    tokens = np.concatenate(tok_parts) if tok_parts else np.zeros(0, dtype=np.int64)
    parents = np.concatenate(parent_parts) if parent_parts else np.zeros(0, dtype=np.int64)
    return tokens, parents, final_parts
