"""An app with every kind of route the OpenAPI document describes, for its tests."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import uuid
from typing import Annotated, Literal, TypedDict

import msgspec
import pydantic

from microback import App, BaseConverter, Form, Header, Query, Router
from microback.db import Database
from microback.openapi import enable_openapi, operation
from microback.security import (
    Auth,
    Csrf,
    csrf_exempt,
    login_required,
    rate_limit,
    requires_role,
    requires_scope,
)

SECRET = "openapi-tests-secret-key-0123456789abcdef"


class Item(msgspec.Struct):
    sku: Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}-[0-9]+$")]
    qty: Annotated[int, msgspec.Meta(ge=1, le=1000)]


class NewOrder(msgspec.Struct):
    customer: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    items: list[Item]
    kind: Literal["retail", "wholesale"] = "retail"
    due: datetime.date | None = None
    total: decimal.Decimal | None = None


@dataclasses.dataclass
class OrderOut:
    id: int
    customer: str
    ref: uuid.UUID


@dataclasses.dataclass
class Filters:
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20
    tag: list[str] = dataclasses.field(default_factory=list)


class Tally(TypedDict):
    name: str
    count: int


class Login(msgspec.Struct):
    email: str
    password: Annotated[str, msgspec.Meta(min_length=8)]


@dataclasses.dataclass
class Trace:
    x_request_id: Annotated[str, msgspec.Meta(max_length=64)]
    x_retries: int = 0


class Signup(pydantic.BaseModel):
    email: str = pydantic.Field(min_length=3)
    plan: Literal["free", "paid"] = "free"


class Search(pydantic.BaseModel):
    q: str = pydantic.Field(min_length=1)


class HexConverter(BaseConverter):
    regex = "[0-9a-f]+"


def build(url: str) -> App:
    app = App(secret_key=SECRET)
    app.add_converter("hex", HexConverter)
    db = Database(app, url)
    Auth(app, db, password_rounds=10, login_url="/login")
    Csrf(app)
    enable_openapi(app, title="Orders", version="2.1.0", description="Orders and tallies.")

    orders = Router(name="orders")

    @orders.post("/orders")
    @requires_scope("orders:write")
    @operation(status=201)
    def create_order(request, order: NewOrder) -> OrderOut:
        """Place an order.

        Each item names a product by its SKU.
        """
        return OrderOut(1, order.customer, uuid.uuid4()), 201

    @orders.get("/orders")
    @requires_scope("orders:read")
    def list_orders(request, filters: Annotated[Filters, Query()]) -> list[OrderOut]:
        return []

    @orders.get("/orders/<int:order_id>")
    @requires_scope("orders:read")
    def show_order(request, order_id) -> OrderOut:
        return OrderOut(order_id, "ada", uuid.uuid4())

    app.mount(orders)

    @app.get("/admin/tallies/<any(day, week):period>")
    @requires_role("admin", "auditor")
    def tallies(request, period) -> list[Tally]:
        return []

    @app.get("/me")
    @login_required
    def me(request):
        return {}

    @app.post("/hooks/<uuid:hook_id>")
    @csrf_exempt
    @rate_limit("10/minute")
    @operation(responses={410: "The hook was deleted."}, tags=["hooks"])
    def hook(request, hook_id, tally: Tally):
        return {}

    @app.get("/files/<path:name>")
    def file(request, name):
        """Give a file."""
        return b""

    @app.get("/prices/<float:price>/<string(length=3):currency>/<hex:code>")
    def price(request, price, currency, code):
        return {}

    @app.route("/echo", methods=["GET", "PUT"])
    def echo(request):
        return {}

    @app.post("/login")
    def login(request, form: Annotated[Login, Form()], trace: Annotated[Trace, Header()]):
        return {}

    @app.post("/signup")
    def signup(request, data: Signup, search: Annotated[Search, Query()]):
        return {}

    @app.get("/hidden")
    @operation(include=False)
    def hidden(request):
        return {}

    return app
