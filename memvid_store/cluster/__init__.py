"""Sharded memories on Ray: ingestion embedded on parallel workers, shards served by actors.

Optional: needs the ``ray`` extra. :mod:`.ray_ingest` builds shards; :mod:`.serving`
keeps them warm in actors and fans queries out to them.
"""
