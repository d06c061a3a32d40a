"""The OpenAPI 3.1 document of an app, generated from its routes, and a docs page for it.

:func:`openapi_document` builds the document; :func:`enable_openapi` serves it, and Swagger
UI, from the app; ``microback openapi TARGET`` prints it. :func:`operation` tells what the
code cannot show (a success status, errors a handler raises itself, tags). docs/openapi.md.
"""

from .document import OPENAPI_VERSION as OPENAPI_VERSION
from .document import openapi_document as openapi_document
from .facts import operation as operation
from .serving import OpenAPI as OpenAPI
from .serving import enable_openapi as enable_openapi
