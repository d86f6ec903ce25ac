class UserError(Exception):
    """A failure the user can act on: the CLI prints it without a traceback."""


class ServiceError(Exception):
    """A local service (or what it needs, such as Java) could not be started, reached or stopped;
    the message says what to do."""
