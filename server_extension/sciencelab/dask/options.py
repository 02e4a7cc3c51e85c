"""The user's options of a template: one JSON Schema validates them, is served, and renders the form.

`make_option_schema` builds the schema from the template (and, for backends that publish their own
option bounds such as dask-gateway, from those too); `validate_options` checks a request against it
and returns `ClusterOptions` holding only validated numbers and admin-listed choices. Messages show
what the user sent cut short (`shown`, `cut`): a refused value may be a megabyte.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import jsonschema

from ..request_json import cut, shown
from .errors import OptionError
from .templates import NUMERIC_OPTIONS, Bounds, ClusterTemplate, Environment, offers_option

ADAPT_OPTIONS = ("adaptive", "adapt_minimum", "adapt_maximum")
# Seconds between two pushes of the updates WebSocket a client may ask for.
MAX_UPDATE_INTERVAL = 60


@dataclass(frozen=True)
class ClusterOptions:
    """Validated options of one cluster; every field is set, offered to the user or fixed by the template."""

    workers: int
    cores: int
    memory: float  # GiB per worker
    gpus: int
    idle_timeout: float  # minutes, 0: never
    adaptive: bool
    adapt_minimum: int
    adapt_maximum: int
    environment: Environment | None
    walltime: int | None = None  # minutes per worker job; batch backends only

    @property
    def memory_bytes(self) -> int:
        return int(self.memory * 2**30)

    @property
    def max_workers(self) -> int:
        """The most workers this cluster may run: what limits are checked against."""
        return self.adapt_maximum if self.adaptive else self.workers

    def to_json(self) -> dict:
        values = {
            name: getattr(self, name) for name in (*NUMERIC_OPTIONS, *ADAPT_OPTIONS) if getattr(self, name) is not None
        }
        values["environment"] = self.environment.name if self.environment else None
        return values


def effective_bounds(
    template: ClusterTemplate, backend_bounds: Mapping[str, Bounds] | None = None
) -> dict[str, Bounds]:
    """The template's bounds, narrowed by what the backend itself allows (e.g. the gateway's options)."""
    result = {}
    for option in NUMERIC_OPTIONS:
        bounds = template.bounds(option)
        narrower = (backend_bounds or {}).get(option)
        if narrower is not None:
            minimum = max(bounds.minimum, narrower.minimum)
            maximum = max(minimum, min(bounds.maximum, narrower.maximum))
            bounds = Bounds(default=min(max(bounds.default, minimum), maximum), minimum=minimum, maximum=maximum)
        result[option] = bounds
    return result


def make_option_schema(template: ClusterTemplate, backend_bounds: Mapping[str, Bounds] | None = None) -> dict:
    """JSON Schema of the options a user may send for `template`; fixed options are left out."""
    bounds = effective_bounds(template, backend_bounds)
    properties = {}
    for option, spec in NUMERIC_OPTIONS.items():
        option_bounds = bounds[option]
        if option_bounds.fixed or not offers_option(template.backend, option):
            continue
        properties[option] = _number_schema(spec["title"], spec["unit"], spec["integer"], option_bounds)
        if option == "workers" and template.adaptive:
            properties["adaptive"] = {
                "type": "boolean",
                "title": "Adaptive",
                "description": "Let Dask add and remove workers with the load, between the minimum and maximum below.",
                "default": False,
            }
            properties["adapt_minimum"] = _number_schema(
                "Adaptive minimum",
                "workers",
                True,
                Bounds(option_bounds.minimum, option_bounds.minimum, option_bounds.maximum),
            )
            properties["adapt_maximum"] = _number_schema(
                "Adaptive maximum",
                "workers",
                True,
                Bounds(option_bounds.maximum, option_bounds.minimum, option_bounds.maximum),
            )
    if len(template.environments) > 1:
        properties["environment"] = {
            "type": "string",
            "title": "Environment",
            "description": "Software the workers run; pick the one of your notebook's kernel.",
            "default": template.default_environment,
            "oneOf": [{"const": e.name, "title": e.title} for e in template.environments],
        }
    return {
        "type": "object",
        "title": template.title,
        "description": template.description,
        "properties": properties,
        "additionalProperties": False,
    }


def validate_options(
    template: ClusterTemplate, options, backend_bounds: Mapping[str, Bounds] | None = None
) -> ClusterOptions:
    """Check `options` (untrusted: straight from the REST API) against the template's schema.

    :raises OptionError: naming the field, the value and what is allowed.
    """
    if not isinstance(options, Mapping):
        raise OptionError(
            "options", options, f'options: must be an object such as {{"workers": 2}}, got {shown(options)}'
        )
    schema = make_option_schema(template, backend_bounds)
    error = next(iter(sorted(jsonschema.Draft202012Validator(schema).iter_errors(options), key=_error_order)), None)
    if error is not None:
        raise _option_error(template, schema, options, error)
    # NaN passes JSON Schema's bounds (every comparison with it is false), infinity only open ones.
    for field, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise OptionError(
                field,
                value,
                f"{field}: {value} is not a finite number; choose {schema['properties'][field]['description']}",
            )

    bounds = effective_bounds(template, backend_bounds)
    values = {option: options.get(option, bounds[option].default) for option in NUMERIC_OPTIONS}
    adaptive = bool(options.get("adaptive", False))
    adapt_minimum = options.get("adapt_minimum", bounds["workers"].minimum)
    adapt_maximum = options.get("adapt_maximum", bounds["workers"].maximum)
    if adaptive and adapt_minimum > adapt_maximum:
        raise OptionError(
            "adapt_minimum",
            adapt_minimum,
            f"adapt_minimum: {adapt_minimum} is above adapt_maximum {adapt_maximum}; "
            "the adaptive minimum must not exceed the maximum",
        )
    environment = None
    if template.environments:
        name = options.get("environment", template.default_environment)
        environment = next(e for e in template.environments if e.name == name)
    return ClusterOptions(
        workers=int(values["workers"]),
        cores=int(values["cores"]),
        memory=float(values["memory"]),
        gpus=int(values["gpus"]),
        idle_timeout=float(values["idle_timeout"]),
        adaptive=adaptive,
        adapt_minimum=int(adapt_minimum),
        adapt_maximum=int(adapt_maximum),
        environment=environment,
        walltime=int(values["walltime"]) if offers_option(template.backend, "walltime") else None,
    )


def validate_scaling(template: ClusterTemplate, request, backend_bounds: Mapping[str, Bounds] | None = None) -> dict:
    """Check a PATCH body: `{"workers": n}` or `{"adapt": {"minimum": a, "maximum": b}}`.

    Returns `{"workers": n}` or `{"adapt": (a, b)}` with validated integers.
    """
    workers = effective_bounds(template, backend_bounds)["workers"]
    allowed = (
        f'send {{"workers": n}} or {{"adapt": {{"minimum": a, "maximum": b}}}} '
        f"with {workers.minimum:g} to {workers.maximum:g} workers"
    )
    if not isinstance(request, Mapping) or len(request) != 1 or not set(request) <= {"workers", "adapt"}:
        raise OptionError("body", request, f"body: {shown(request)} is not a scaling request; {allowed}")
    if "workers" in request:
        return {"workers": _check_count("workers", request["workers"], workers)}
    adapt = request["adapt"]
    if not template.adaptive:
        raise OptionError(
            "adapt",
            adapt,
            f"adapt: template '{template.name}' does not allow adaptive scaling; send {{\"workers\": n}}",
        )
    if not isinstance(adapt, Mapping) or set(adapt) != {"minimum", "maximum"}:
        raise OptionError("adapt", adapt, f'adapt: {shown(adapt)} must be {{"minimum": a, "maximum": b}}; {allowed}')
    minimum = _check_count("adapt.minimum", adapt["minimum"], workers)
    maximum = _check_count("adapt.maximum", adapt["maximum"], workers)
    if minimum > maximum:
        raise OptionError("adapt.minimum", minimum, f"adapt.minimum: {minimum} is above adapt.maximum {maximum}")
    return {"adapt": (minimum, maximum)}


def validate_update_interval(request) -> float:
    """Check a message of the updates WebSocket, `{"interval": seconds}`; returns the seconds."""
    allowed = f'send {{"interval": seconds}} with 0 to {MAX_UPDATE_INTERVAL} seconds'
    if not isinstance(request, Mapping) or set(request) != {"interval"}:
        raise OptionError("message", request, f"message: {shown(request)} is not an update request; {allowed}")
    interval = request["interval"]
    if isinstance(interval, bool) or not isinstance(interval, int | float):
        raise OptionError("interval", interval, f"interval: {shown(interval)} is not a number; {allowed}")
    if not 0 <= interval <= MAX_UPDATE_INTERVAL:
        raise OptionError("interval", interval, f"interval: {shown(interval)} is out of bounds; {allowed}")
    return float(interval)


def _check_count(field: str, value, bounds: Bounds) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionError(field, value, f"{field}: {shown(value)} is not a whole number of workers")
    if not bounds.minimum <= value <= bounds.maximum:
        raise OptionError(
            field, value, f"{field}: {value} is out of bounds; choose {bounds.minimum:g} to {bounds.maximum:g} workers"
        )
    return value


def _number_schema(title: str, unit: str, integer: bool, bounds: Bounds) -> dict:
    cast = int if integer else float
    return {
        "type": "integer" if integer else "number",
        "title": title,
        "description": f"{bounds.minimum:g} to {bounds.maximum:g} {unit}",
        "minimum": cast(bounds.minimum),
        "maximum": cast(bounds.maximum),
        "default": cast(bounds.default),
    }


def _error_order(error: jsonschema.ValidationError):
    """Report unknown fields first, then the first field in the schema's order."""
    return (error.validator != "additionalProperties", list(error.absolute_path))


def _option_error(
    template: ClusterTemplate, schema: dict, options: Mapping, error: jsonschema.ValidationError
) -> OptionError:
    properties = schema["properties"]
    if error.validator == "additionalProperties":
        unknown = sorted(set(options) - set(properties))[0]
        offered = ", ".join(properties) or "none"
        return OptionError(
            unknown,
            options[unknown],
            f"{cut(unknown)}: not an option of template '{template.name}' (fixed by the admin or unknown); "
            f"options: {offered}",
        )
    field = str(error.absolute_path[0])
    value = error.instance
    spec = properties[field]
    if field == "environment":
        choices = ", ".join(choice["const"] for choice in spec["oneOf"])
        return OptionError(field, value, f"environment: {shown(value)} is not allowed; choose one of: {choices}")
    if spec["type"] == "boolean":
        return OptionError(field, value, f"{field}: {shown(value)} must be true or false")
    kind = "a whole number" if spec["type"] == "integer" else "a number"
    if error.validator == "type":
        return OptionError(field, value, f"{field}: {shown(value)} is not {kind}; choose {spec['description']}")
    return OptionError(field, value, f"{field}: {shown(value)} is out of bounds; choose {spec['description']}")
