"""CloudAPI error responses: an exception carrying status, restCode and message."""


class CloudApiError(Exception):
    def __init__(self, status, code, message, *, errors=None, body=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors
        self.body = body            # replaces the {code, message} body (410 Gone)
        self.headers = headers or {}

    def to_body(self):
        if self.body is not None:
            return self.body
        out = {"code": self.code, "message": self.message}
        if self.errors is not None:
            out["errors"] = self.errors
        return out


def not_found(message):
    return CloudApiError(404, "ResourceNotFound", message)


def invalid_argument(message):
    return CloudApiError(409, "InvalidArgument", message)


def missing_parameter(message):
    return CloudApiError(409, "MissingParameter", message)


def validation_failed(message, errors):
    return CloudApiError(409, "ValidationFailed", message, errors=errors)


def invalid_header(message):
    return CloudApiError(400, "InvalidHeader", message)


def invalid_credentials(message="Invalid authorization credentials supplied"):
    return CloudApiError(401, "InvalidCredentials", message)


def not_authorized(message):
    return CloudApiError(403, "NotAuthorized", message)


def gone(body):
    """A deleted machine: plain 410 whose body is the machine itself."""
    return CloudApiError(410, "Gone", "gone", body=body)
