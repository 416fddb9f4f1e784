"""BM25 over a sparse term matrix (scipy), with a spelling fallback for query words not in the vocabulary."""

from __future__ import annotations

import difflib
import re
from collections import defaultdict

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer

TOKEN = r"[a-z0-9]+(?:[.:][a-z0-9]+)*"
_STOP_WORDS = (
    "a an and are as at be by for from has have how i in is it its of on or the to was what when which who why "
    "with does do can should my me there their this that these those"
)
STOP = frozenset(_STOP_WORDS.split())


def _analyze(text: str) -> list[str]:
    out: list[str] = []
    for tok in re.findall(TOKEN, text.lower()):
        if tok in STOP:
            continue
        out.append(tok)
        if "." in tok or ":" in tok:  # codes: also index the parts ("i51.7" -> "i51", "7"; "hp:0001640")
            out.extend(p for p in re.split(r"[.:]", tok) if len(p) > 1)
    return out


class BM25Index:
    def __init__(self, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.ids = np.zeros(0, dtype=np.int64)
        self.matrix: sparse.csc_matrix | None = None
        self.vectorizer: CountVectorizer | None = None
        self._by_initial: dict[str, list[str]] = {}

    def fit(self, ids: list[int], texts: list[str]) -> None:
        self.ids = np.asarray(ids, dtype=np.int64)
        if not texts:
            self.matrix = None
            return
        self.vectorizer = CountVectorizer(analyzer=_analyze, dtype=np.float32)
        tf = self.vectorizer.fit_transform(texts).tocsr().astype(np.float32)
        n_docs = tf.shape[0]
        df = np.bincount(tf.indices, minlength=tf.shape[1]).astype(np.float32)
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        lengths = np.asarray(tf.sum(axis=1)).ravel()
        norm = self.k1 * (1 - self.b + self.b * lengths / max(lengths.mean(), 1.0))
        rows = np.repeat(np.arange(n_docs), np.diff(tf.indptr))
        data = tf.data * (self.k1 + 1) / (tf.data + norm[rows]) * idf[tf.indices]
        self.matrix = sparse.csr_matrix((data, tf.indices, tf.indptr), shape=tf.shape).tocsc()
        by_initial: dict[str, list[str]] = defaultdict(list)
        for term in self.vectorizer.vocabulary_:
            if term.isalpha() and len(term) > 3:
                by_initial[term[:1]].append(term)
        self._by_initial = dict(by_initial)

    def _terms(self, query: str) -> list[int]:
        assert self.vectorizer is not None
        vocab = self.vectorizer.vocabulary_
        cols: list[int] = []
        for tok in _analyze(query):
            if tok in vocab:
                cols.append(vocab[tok])
            elif tok.isalpha() and len(tok) > 4:  # likely misspelt: nearest vocabulary word with the same initial
                close = difflib.get_close_matches(tok, self._by_initial.get(tok[0], []), n=1, cutoff=0.8)
                if close:
                    cols.append(vocab[close[0]])
        return cols

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        if self.matrix is None:
            return []
        cols = self._terms(query)
        if not cols:
            return []
        scores = np.asarray(self.matrix[:, cols].sum(axis=1)).ravel()
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(int(self.ids[i]), float(scores[i])) for i in top if scores[i] > 0]
