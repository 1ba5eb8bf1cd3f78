"""The one error type of the results store."""


class StoreError(Exception):
    """A results database that cannot be used, or a bad request to it."""
