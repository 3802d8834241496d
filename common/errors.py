"""User-facing errors: each is reported by the command-line tools as one clear line."""


class UserError(Exception):
    """A bad input (missing data, corrupt file, bad config, ...) the user can fix."""
