"""Torture runner: kill -9, flipped bytes, truncations, crafted lengths, bombs and a soak.

``python -m tests.torture`` (``make torture``) runs every kind with the counts of
``MEMVID_TORTURE_*`` variables (see ``config.py``), classifies each trial (``outcome.py``)
and writes ``bench/results/torture-<stamp>.md`` and ``.json``. Each trial runs in a
forked process of its own, so a crash or a hang is counted instead of ending the run.
"""
