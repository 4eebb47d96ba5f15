"""Errors of jobs/ that an operator can fix; str() is one line naming the problem."""


class JobError(ValueError):
    """A job cannot run: a missing model, a bad path. The message says what to do."""
