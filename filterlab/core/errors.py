"""The errors every command turns into one line and an exit status, and the exit statuses themselves.

``InputError`` and its subclasses are the user's input at fault (a file, a key, a value, a run folder): the CLI prints
``filterlab: error: MESSAGE`` and exits 2. Anything else is a bug in filterlab and is shown with its traceback.
"""

from __future__ import annotations

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DIVERGED = 0, 1, 2, 3


class InputError(ValueError):
    """Bad input found before or outside training: the message names the file, key or value and what is accepted."""


class ConfigError(InputError):
    """A config that cannot be used: ``detail`` names the dotted key, the value and what is accepted; ``source`` (a
    file, with the CLI's ``--set`` context) is what the config was read from, None for a dict built in Python. The
    message is ``SOURCE: DETAIL``, or the detail alone."""

    def __init__(self, detail: str, source: str | None = None):
        self.detail, self.source = detail, source
        super().__init__(f"{source}: {detail}" if source else detail)

    def __reduce__(self) -> tuple:  # a sweep's worker process sends it back pickled
        return (type(self), (self.detail, self.source))

    def within(self, source: str | None) -> ConfigError:
        """The same error read from ``source`` (replacing any source it had)."""
        return ConfigError(self.detail, source)


class RunDirError(InputError, OSError):
    """A run folder that cannot be created, read or written."""


class ArtifactError(InputError):
    """A run file (checkpoint, snapshots, summary) that is missing, corrupt, foreign or of an unknown format."""


def short_repr(value: object, limit: int = 60) -> str:
    """repr() cut to ``limit`` characters, so a hostile value never floods an error message or a table."""
    text = repr(value) if not isinstance(value, str) else repr(value[: limit + 1])
    return text if len(text) <= limit else text[: limit - 3] + "..."
