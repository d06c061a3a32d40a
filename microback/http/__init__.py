"""Request and Response on werkzeug, the JSON codec, typed parameters, and how errors are
answered; one module each (docs/architecture.md).

This layer does no I/O of its own and knows nothing of apps, databases or servers.
"""

from .errors import abort as abort
from .errors import error_response as error_response
from .errors import prefers_json as prefers_json
from .errors import problem_response as problem_response
from .json_codec import json_dumps as json_dumps
from .json_codec import json_loads as json_loads
from .params import InvalidField as InvalidField
from .params import InvalidParameter as InvalidParameter
from .params import JSONObject as JSONObject
from .params import MissingField as MissingField
from .params import Params as Params
from .problem import PROBLEM_JSON as PROBLEM_JSON
from .problem import FieldError as FieldError
from .problem import Problem as Problem
from .request import SAFE_METHODS as SAFE_METHODS
from .request import BodyTooLarge as BodyTooLarge
from .request import Request as Request
from .request import ServingApp as ServingApp
from .request import SessionState as SessionState
from .response import HeadersLike as HeadersLike
from .response import Response as Response
from .response import add_vary as add_vary
from .response import json_response as json_response
from .response import redirect as redirect

__all__ = [
    "PROBLEM_JSON",
    "SAFE_METHODS",
    "BodyTooLarge",
    "FieldError",
    "HeadersLike",
    "InvalidField",
    "InvalidParameter",
    "JSONObject",
    "MissingField",
    "Params",
    "Problem",
    "Request",
    "Response",
    "ServingApp",
    "SessionState",
    "abort",
    "add_vary",
    "error_response",
    "json_dumps",
    "json_loads",
    "json_response",
    "prefers_json",
    "problem_response",
    "redirect",
]
