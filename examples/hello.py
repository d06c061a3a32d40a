from microback import App

app = App()


@app.get("/")
def index(request):
    return {"message": "Hello from microback"}


@app.get("/hello/<name>")
def hello(request, name):
    return {"message": f"Hello, {name}!"}
