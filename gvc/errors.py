"""The project's error types.

Library code raises these; only the CLI turns them into a message and an exit code.
Every message says what was expected, what was found, and what to do about it.
"""

from __future__ import annotations


class GvcError(Exception):
    """Base class of every error a user can cause (bad input, missing file, bad config)."""


class ConfigError(GvcError):
    """A configuration file or option is invalid."""


class AudioError(GvcError):
    """An audio file cannot be read or is unusable (empty, silent, corrupt, NaN)."""


class CheckpointError(GvcError):
    """A checkpoint is missing, unreadable, or does not match the model being built."""


class FeatureMismatch(GvcError):
    """Features were made with settings that disagree with the ones requested."""


class DataLayoutError(GvcError):
    """A data tree is not laid out as `<root>/<singer>/<utterance>.<ext>`."""


class TrainingDiverged(GvcError):
    """A loss or gradient became NaN/Inf; nothing was saved after the last good checkpoint."""
