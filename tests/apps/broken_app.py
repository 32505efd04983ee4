"""An app that cannot be imported: molt must print this traceback once and exit 3."""
import molt_test_no_such_module  # noqa: F401


def application(environ, start_response):
    raise AssertionError('never reached')
