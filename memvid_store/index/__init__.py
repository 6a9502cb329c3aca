"""Search indexes: filters, exact and approximate vector search, BM25 lexical search."""
