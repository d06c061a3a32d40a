"""Every example app is imported from its file and exercised, so examples cannot rot."""

import importlib.util
from pathlib import Path

from microback.testing import TestClient

EXAMPLES = Path(__file__).parent.parent / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hello_example_answers_json():
    client = TestClient(load_example("hello").app)
    response = client.get("/")
    assert response.status_int == 200
    assert response.content_type == "application/json"
    assert response.json == {"message": "Hello from microback"}
    assert client.get("/hello/Ada").json == {"message": "Hello, Ada!"}
    assert client.get("/missing", status=404).json["status"] == 404
