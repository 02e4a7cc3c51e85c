"""Errors of the cluster manager, each with the HTTP status the API answers with and a sentence for people."""


class ClusterError(Exception):
    """Base of the errors the API reports as `{"message": ...}` with `status_code`."""

    status_code = 500

    def __init__(self, message: str, **details):
        super().__init__(message)
        self.message = message
        self.details = details


class OptionError(ClusterError):
    """A user option is unknown or out of its template's bounds (400)."""

    status_code = 400

    def __init__(self, field: str, value, message: str):
        super().__init__(message, field=field, value=value)


class NotFoundError(ClusterError):
    """No such template or cluster for this user (404)."""

    status_code = 404


class LimitError(ClusterError):
    """Creating or scaling would exceed the user's limits (403)."""

    status_code = 403


class BackendError(ClusterError):
    """The backend refused (502) or did not answer in time / is down (503); carries its own message."""

    def __init__(self, message: str, unavailable: bool = False):
        super().__init__(message)
        self.status_code = 503 if unavailable else 502


class ClusterGone(Exception):
    """Raised by a backend when a cluster ended on its own (idle timeout, stopped elsewhere): forget it."""
