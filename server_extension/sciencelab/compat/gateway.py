"""dask-gateway: the bounds of the gateway's numeric options, which it exposes only on private fields.

`Gateway.cluster_options()` returns an `Options` mapping of values; each field's specification
(default, minimum, maximum), which the gateway sends in its `/api/v1/options` answer, is kept only
in the mapping's private `_fields`.
"""

from dask_gateway.options import Options

PRIVATE_NAMES = ("dask_gateway.options:Options()._fields",)


def option_fields(options: Options) -> dict[str, dict]:
    """Field name -> `{"default", "min", "max"}` (None where a field has no bound) of a gateway's options."""
    # ref: https://github.com/dask/dask-gateway/blob/2025.4.0/dask-gateway/dask_gateway/options.py#L46
    # (no public accessor for a field's specification)
    return {
        name: {"default": field.value, "min": getattr(field, "min", None), "max": getattr(field, "max", None)}
        for name, field in options._fields.items()
    }


def canary():
    """Fails, naming the symbol, when the installed dask-gateway keeps its option fields elsewhere."""
    from dask_gateway.options import Integer

    options = Options(Integer("worker_cores", 1, min=1, max=4))
    assert hasattr(options, "_fields"), "dask_gateway.options.Options()._fields is missing"
    assert option_fields(options) == {"worker_cores": {"default": 1, "min": 1, "max": 4}}, (
        "dask_gateway.options.Options()._fields no longer maps names to fields with value, min and max"
    )
