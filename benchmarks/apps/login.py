"""The app behind benchmarks/login_offload.py: a cheap route and two password checks.

``/login/offloaded`` verifies with microback's ``verify_password`` (gevent's thread pool);
``/login/inline`` calls bcrypt on the event loop, as code that does not know better would.
"""

import base64
import hashlib

import bcrypt

from microback import App
from microback.security import hash_password, verify_password

app = App()
PASSWORD = "correct horse battery staple"
STORED = hash_password(PASSWORD, rounds=12)
_BCRYPT_PART = STORED.split("$", 1)[1].encode()
_PREHASHED = base64.b64encode(hashlib.sha256(PASSWORD.encode()).digest())


@app.get("/ping")
def ping(request):
    return {"pong": True}


@app.post("/login/offloaded")
def login_offloaded(request):
    return {"ok": verify_password(PASSWORD, STORED, rounds=12)}


@app.post("/login/inline")
def login_inline(request):
    return {"ok": bcrypt.checkpw(_PREHASHED, _BCRYPT_PART)}
