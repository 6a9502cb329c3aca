"""Vector search: scoring conventions, stored vectors, HNSW graphs and the search paths.

Numpy is imported only by the modules that need it (:mod:`.scoring`, :mod:`.stored`,
:mod:`.exact`, :mod:`.hnsw`, :mod:`.hnsw_search`); :mod:`.paths` chooses the path.
"""
