"""Errors of the bot layer that a user can fix; the CLI prints them as one line, exit code 2."""


class BotError(ValueError):
    """A problem the operator can fix; str() is one line naming it."""
