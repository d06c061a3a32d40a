"""The signature schemes against vectors made here with hmac, from the providers' specs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from microback.integrations import (
    GitHubSignature,
    SignatureError,
    StandardWebhooks,
    StripeSignature,
    sign_standard,
)

NOW = 1_700_000_000
BODY = b'{"id": "evt_1", "type": "payment.succeeded", "amount": 4200}'
KEY = b"a secret key of 24 bytes"
STANDARD_SECRET = "whsec_" + base64.b64encode(KEY).decode()


def _standard_headers(body: bytes = BODY, stamp: int = NOW, secret_key: bytes = KEY) -> dict:
    mac = hmac.new(secret_key, f"msg_1.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1,bm90IGl0 v1," + base64.b64encode(mac).decode(),
    }


def test_standard_webhooks_the_specs_own_example() -> None:
    # The example of the Standard Webhooks reference libraries (standard-webhooks/...).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign_standard(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": expected,
    }
    scheme = StandardWebhooks(secret)
    assert scheme.verify(headers, body, now=1614265330 + 10) == "msg_p5jXN8AQM9LWM0D4loKWxJek"


def test_standard_webhooks() -> None:
    scheme = StandardWebhooks(["whsec_" + base64.b64encode(b"old").decode(), STANDARD_SECRET])
    assert scheme.verify(_standard_headers(), BODY, now=NOW + 299) == "msg_1"
    assert scheme.verify(_standard_headers(), BODY, now=NOW - 299) == "msg_1"
    with pytest.raises(SignatureError, match="outside the tolerance of 300 s"):
        scheme.verify(_standard_headers(), BODY, now=NOW + 301)
    with pytest.raises(SignatureError, match=r"no v1 signature .* matches"):
        scheme.verify(_standard_headers(), BODY + b" ", now=NOW)
    with pytest.raises(SignatureError, match=r"no v1 signature .* matches"):
        scheme.verify(_standard_headers(secret_key=b"another key"), BODY, now=NOW)
    tampered = {**_standard_headers(), "webhook-timestamp": str(NOW + 1)}
    with pytest.raises(SignatureError, match="matches"):
        scheme.verify(tampered, BODY, now=NOW)
    with pytest.raises(SignatureError, match="webhook-signature header is missing"):
        scheme.verify({"webhook-id": "m", "webhook-timestamp": str(NOW)}, BODY, now=NOW)
    with pytest.raises(SignatureError, match="not a number"):
        scheme.verify({**_standard_headers(), "webhook-timestamp": "soon"}, BODY, now=NOW)


STRIPE_SECRET = "whsec_stripe"


def _stripe_header(body: bytes = BODY, stamp: int = NOW, secret: str = STRIPE_SECRET) -> str:
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac},v0=6ffbb59b2300aae63f272406069a9788598b792"


def test_stripe_signature() -> None:
    scheme = StripeSignature("whsec_stripe")
    assert scheme.verify({"Stripe-Signature": _stripe_header()}, BODY, now=NOW) == "evt_1"
    with pytest.raises(SignatureError, match="outside the tolerance"):
        scheme.verify({"Stripe-Signature": _stripe_header()}, BODY, now=NOW + 600)
    with pytest.raises(SignatureError, match="matches"):
        scheme.verify({"Stripe-Signature": _stripe_header(secret="wrong")}, BODY, now=NOW)
    with pytest.raises(SignatureError, match="no t= or no v1="):
        scheme.verify({"Stripe-Signature": f"t={NOW}"}, BODY, now=NOW)
    not_an_event = b"[1, 2]"
    with pytest.raises(SignatureError, match="not a Stripe event"):
        scheme.verify({"Stripe-Signature": _stripe_header(not_an_event)}, not_an_event, now=NOW)


def test_github_signature() -> None:
    scheme = GitHubSignature("It's a Secret to Everybody")
    # GitHub's documented example: this secret and payload give this signature.
    body = b"Hello, World!"
    expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert hmac.new(b"It's a Secret to Everybody", body, hashlib.sha256).hexdigest() == expected
    headers = {"X-Hub-Signature-256": f"sha256={expected}", "X-GitHub-Delivery": "d-1"}
    assert scheme.verify(headers, body) == "d-1"
    with pytest.raises(SignatureError, match="does not match"):
        scheme.verify(headers, body + b"!")
    with pytest.raises(SignatureError, match="not 'sha256='"):
        scheme.verify({**headers, "X-Hub-Signature-256": "sha1=abc"}, body)
    with pytest.raises(SignatureError, match="X-GitHub-Delivery header is missing"):
        scheme.verify({"X-Hub-Signature-256": f"sha256={expected}"}, body)


def test_a_secret_is_required() -> None:
    with pytest.raises(ValueError, match="give the webhook secret"):
        StripeSignature("")
    with pytest.raises(ValueError, match="'whsec_' and base64"):
        StandardWebhooks("whsec_not base64!")
    assert json.loads(BODY)["id"] == "evt_1"
