"""Batch drivers: walk a tree of audio files, run one extractor over each, write `data_gvc/`.

One function per step (`resample`, `extract_mel`, `extract_f0`, ...); all share the engine in
`prepare.engine` (idempotent, atomic, parallel, shardable, one progress bar, a failure summary).
"""
