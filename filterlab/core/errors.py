"""The errors every command turns into one line and an exit status, and the exit statuses themselves.

``InputError`` and its subclasses are the user's input at fault (a file, a key, a value, a run folder): the CLI prints
``filterlab: error: MESSAGE`` and exits 2. Anything else is a bug in filterlab and is shown with its traceback.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DIVERGED = 0, 1, 2, 3


class InputError(ValueError):
    """Bad input found before or outside training: the message names the file, key or value and what is accepted."""


class ConfigError(InputError):
    """A config that cannot be used; the message names the source, the dotted key and what is accepted."""


class RunDirError(InputError, OSError):
    """A run folder that cannot be created, read or written."""


class ArtifactError(InputError):
    """A run file (checkpoint, snapshots, summary) that is missing, corrupt, foreign or of an unknown format."""


def short_repr(value: object, limit: int = 60) -> str:
    """repr() cut to ``limit`` characters, so a hostile value never floods an error message or a table."""
    text = repr(value) if not isinstance(value, str) else repr(value[: limit + 1])
    return text if len(text) <= limit else text[: limit - 3] + "..."
