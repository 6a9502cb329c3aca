"""BM25 lexical search on tantivy: one logical index per .mv2 file.

The manifest (:mod:`.manifest`) is readable without importing the other modules here.
"""
