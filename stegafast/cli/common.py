"""Pieces every command shares."""


class UserError(Exception):
    """A mistake in how a command was called (bad file, bad value): reported as
    one error line and exit status 2, without a traceback."""
