"""demo_app wrapped in the stdlib's WSGI checker: any PEP 3333 violation by the server
(or the app) raises AssertionError or warns WSGIWarning, which lands in molt's log."""
import os
import sys
import warnings
from wsgiref.validate import validator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_app  # noqa: E402

warnings.simplefilter('always')
application = validator(demo_app.application)
