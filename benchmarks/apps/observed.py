"""The JSON route of benchmarks/operations.py, without and with metrics."""

from microback import App, enable_metrics

KEY = "benchmark-secret-key-long-enough-0123456789"  # signs nothing
plain = App(secret_key=KEY)
observed = App(secret_key=KEY)
enable_metrics(observed)

for app in (plain, observed):

    @app.get("/json")
    def hello(request):  # type: ignore[no-untyped-def]
        return {"message": "Hello, World!"}
