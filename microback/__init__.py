"""microback: a WSGI micro-framework with models, security and a production gevent server.

The public API is what this module re-exports; everything else may change between releases.
"""

import importlib
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException as HTTPException

from .app import App as App
from .flash import flash as flash
from .flash import get_flashed_messages as get_flashed_messages
from .health import Health as Health
from .health import enable_health as enable_health
from .http import PROBLEM_JSON as PROBLEM_JSON
from .http import FieldError as FieldError
from .http import InvalidField as InvalidField
from .http import InvalidParameter as InvalidParameter
from .http import JSONObject as JSONObject
from .http import MissingField as MissingField
from .http import Problem as Problem
from .http import Request as Request
from .http import Response as Response
from .http import abort as abort
from .http import json_response as json_response
from .http import problem_response as problem_response
from .http import redirect as redirect
from .metrics import enable_metrics as enable_metrics
from .openapi import OpenAPI as OpenAPI
from .openapi import enable_openapi as enable_openapi
from .openapi import openapi_document as openapi_document
from .openapi import operation as operation
from .routing import BaseConverter as BaseConverter
from .routing import Route as Route
from .routing import Router as Router
from .settings import Settings as Settings
from .settings import SettingsError as SettingsError
from .tracing import Tracing as Tracing
from .tracing import enable_tracing as enable_tracing
from .validation import Body as Body
from .validation import Form as Form
from .validation import Header as Header
from .validation import Query as Query

if TYPE_CHECKING:
    from .static import Static as Static
    from .templates import Templates as Templates
    from .templates import render as render

__version__ = "0.1.0.dev0"

# Names whose modules need an optional extra (Jinja2, whitenoise): imported on first use, so
# an app without templates or static files does not pay for, or need, those libraries.
_LAZY = {"Templates": "templates", "render": "templates", "Static": "static"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'microback' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
