"""Storage engine internals: file format, WAL, runs, snapshots, commits. No public promise."""
