from microback import App, enable_openapi

app = App()
enable_openapi(app, title="Hello", version="1.0.0")  # /openapi.json, and /docs to try it


@app.get("/")
def index(request):
    return {"message": "Hello from microback"}


@app.get("/hello/<name>")
def hello(request, name):
    return {"message": f"Hello, {name}!"}
