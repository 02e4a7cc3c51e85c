"""The Python code that connects a notebook's Dask client to a cluster (pure).

Built as a syntax tree and rendered with `ast.unparse`: every value the code carries (addresses,
names) is a constant rendered with Python's own quoting, so no value can end its string and inject
code, whatever a backend or a user put in it.
"""

import ast
from collections.abc import Sequence
from dataclasses import dataclass

from jupyter_server.utils import url_path_join

#: The Dask configuration variable of `make_dashboard_link`, set for the server's kernels.
DASHBOARD_LINK_ENV = "DASK_DISTRIBUTED__DASHBOARD__LINK"


@dataclass(frozen=True)
class Variable:
    """A name an earlier call bound, as an argument of a later one (`Client(address, security=security)`)."""

    name: str


@dataclass(frozen=True)
class Call:
    """One line of connect code: `target = function(*args, **kwargs)`; `function` may be dotted."""

    target: str
    function: str
    args: tuple = ()
    kwargs: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True)
class ConnectRecipe:
    """`from module import name, *also_import`, then the calls in order; the code ends by displaying `client`."""

    module: str
    name: str
    calls: tuple[Call, ...]
    also_import: tuple[str, ...] = ()


def make_connect_code(recipe: ConnectRecipe) -> str:
    """Render `recipe` as Python source."""
    names = [ast.alias(name=name) for name in (recipe.name, *recipe.also_import)]
    body: list[ast.stmt] = [ast.ImportFrom(module=recipe.module, names=names, level=0)]
    for call in recipe.calls:
        body.append(
            ast.Assign(
                targets=[ast.Name(id=call.target, ctx=ast.Store())],
                value=ast.Call(
                    func=_dotted(call.function),
                    args=[_value(value) for value in call.args],
                    keywords=[ast.keyword(arg=key, value=_value(value)) for key, value in call.kwargs],
                ),
                lineno=0,
            )
        )
    body.append(ast.Expr(value=ast.Name(id="client", ctx=ast.Load())))
    return ast.unparse(ast.fix_missing_locations(ast.Module(body=body, type_ignores=[]))) + "\n"


def make_dashboard_link(base_url: str) -> str:
    """Dask's `distributed.dashboard.link` template for the notebooks of a server at `base_url`.

    Dask fills in the scheduler's host and dashboard port; the browser reaches the dashboard through
    this server's jupyter-server-proxy, as the panel's links do.
    """
    return url_path_join(base_url, "proxy", "{host}:{port}", "status")


def _value(value) -> ast.expr:
    return ast.Name(id=value.name, ctx=ast.Load()) if isinstance(value, Variable) else ast.Constant(value)


def _dotted(name: str) -> ast.expr:
    parts: Sequence[str] = name.split(".")
    node: ast.expr = ast.Name(id=parts[0], ctx=ast.Load())
    for attribute in parts[1:]:
        node = ast.Attribute(value=node, attr=attribute, ctx=ast.Load())
    return node
