"""The one exception type that the CLI turns into a single clear error line."""


class PyhostError(Exception):
    """An error a user can act on; its message is the whole story, no traceback needed."""
