"""Cold start: what an open loads and when, the caches, prefetching and the metrics.

* :mod:`.warmup` — index tiers loaded at open, on first use or by a background thread;
* :mod:`.cache` — the byte-bounded LRU of decoded frames and its counters;
* :mod:`.loader` — batched read-ahead of frames by event-time range;
* :mod:`.analyzer` — the ``AccessPatternAnalyzer`` that predicts the next reads;
* :mod:`.prefetcher` — the thread that decodes those predictions into the frame cache;
* :mod:`.phases` — the light phase recorder an open uses;
* :mod:`.metrics` — ``ColdStartMetrics``, alerts and CloudWatch EMF output.

Nothing is imported here: an open imports only the submodules it uses.
"""
