"""Errors raised by corpus/: str() is one line naming the file, key or value at fault."""


class CorpusError(ValueError):
    """A corpus input or the database could not be used; the message says which and why."""
