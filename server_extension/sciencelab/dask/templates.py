"""Cluster templates: what admins declare, checked once at start-up (pure: no I/O here).

Admins declare templates in the Dask configuration under ``sciencelab.clusters.templates`` (a mapping
from template name to template), in the file the hub names in ``SCIENCELAB_DASK_CONFIG_FILE``, or in
the ``ClusterManager.templates`` traitlet. ``make_templates`` turns the merged configuration into
``ClusterTemplate`` objects and refuses a broken template with a ``TemplateError`` naming the file,
the template and the field. With no template configured at all, ``make_default_templates`` offers one
``local`` template sized to the server's own CPU and memory limits.
"""

import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import jsonschema

GIB = 2**30

# The user-facing numeric options of every template: units and built-in bounds used when the admin
# gives none (conservative: one small worker, never more than four). `local` derives its own from
# the machine (`make_default_templates`). An option with `backends` exists only for those backends.
NUMERIC_OPTIONS = {
    "workers": {
        "title": "Workers",
        "unit": "workers",
        "integer": True,
        "default": {"default": 1, "minimum": 0, "maximum": 4},
    },
    "cores": {
        "title": "Cores per worker",
        "unit": "cores",
        "integer": True,
        "default": {"default": 1, "minimum": 1, "maximum": 1},
    },
    "memory": {
        "title": "Memory per worker",
        "unit": "GiB",
        "integer": False,
        "default": {"default": 2, "minimum": 2, "maximum": 2},
    },
    "gpus": {
        "title": "GPUs per worker",
        "unit": "GPUs",
        "integer": True,
        "default": {"default": 0, "minimum": 0, "maximum": 0},
    },
    "idle_timeout": {
        "title": "Idle timeout",
        "unit": "minutes (0: never)",
        "integer": False,
        "default": {"default": 60, "minimum": 0, "maximum": 1440},
    },
    # The batch system ends a worker's job after this long (SLURM --time, HTCondor allowed_job_duration).
    "walltime": {
        "title": "Walltime",
        "unit": "minutes per worker job",
        "integer": True,
        "default": {"default": 60, "minimum": 60, "maximum": 60},
        "backends": ("htcondor", "slurm"),
    },
}


def offers_option(backend: str, option: str) -> bool:
    """Whether templates of `backend` have `option` (walltime exists only where a batch system runs jobs)."""
    return backend in NUMERIC_OPTIONS[option].get("backends", (backend,))


TEMPLATE_NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


def _non_negative(keys: tuple[str, ...], kind: str) -> dict:
    """Schema of an object whose optional `keys` are non-negative numbers of JSON Schema type `kind`."""
    return {
        "type": "object",
        "properties": {key: {"type": kind, "minimum": 0} for key in keys},
        "additionalProperties": False,
    }


_BOUNDS_SCHEMA = _non_negative(("default", "minimum", "maximum"), "number")

# The admin's side of a template. `backend_settings` is checked by the backend's own schema.
TEMPLATE_SCHEMA = {
    "type": "object",
    "required": ["backend"],
    "properties": {
        "title": {"type": "string"},
        "description": {"type": "string"},
        "backend": {"type": "string"},
        "groups": {"type": "array", "items": {"type": "string"}},
        "adaptive": {"type": "boolean"},
        "options": {
            "type": "object",
            "properties": dict.fromkeys(NUMERIC_OPTIONS, _BOUNDS_SCHEMA),
            "additionalProperties": False,
        },
        "environments": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "value"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "title": {"type": "string"},
                    "kernels": {"type": "array", "items": {"type": "string"}},
                    "value": {"type": "string", "minLength": 1},
                },
                "additionalProperties": False,
            },
        },
        "default_environment": {"type": "string"},
        "backend_settings": {"type": "object"},
    },
    "additionalProperties": False,
}

_LIMIT_SCHEMA = {
    "type": "object",
    "properties": {
        **_non_negative(("clusters", "workers", "cores"), "integer")["properties"],
        "memory": {"type": "number", "minimum": 0},  # GiB
    },
    "additionalProperties": False,
}

LIMITS_SCHEMA = {
    "type": "object",
    "properties": {
        "default": _LIMIT_SCHEMA,
        "groups": {"type": "object", "additionalProperties": _LIMIT_SCHEMA},
        "users": {"type": "object", "additionalProperties": _LIMIT_SCHEMA},
        "local": _LIMIT_SCHEMA,
    },
    "additionalProperties": False,
}


class TemplateError(ValueError):
    """A template (or the limits) the admin configured cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Bounds:
    """A numeric option: its default and the closed interval a user may choose from."""

    default: float
    minimum: float
    maximum: float

    @property
    def fixed(self) -> bool:
        """True when the user has nothing to choose: the option is not offered."""
        return self.minimum == self.maximum


@dataclass(frozen=True)
class Environment:
    """Software the workers run: a kernel's interpreter (local), an image or environment (elsewhere)."""

    name: str
    title: str
    value: str
    kernels: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClusterTemplate:
    """One kind of cluster a user may create, with the bounds of every user-facing option."""

    name: str
    title: str
    description: str
    backend: str
    origin: str
    workers: Bounds
    cores: Bounds
    memory: Bounds
    gpus: Bounds
    idle_timeout: Bounds
    walltime: Bounds
    adaptive: bool = True
    groups: tuple[str, ...] = ()
    environments: tuple[Environment, ...] = ()
    default_environment: str | None = None
    backend_settings: Mapping = field(default_factory=dict)

    def bounds(self, option: str) -> Bounds:
        return getattr(self, option)

    def allows(self, groups: Sequence[str]) -> bool:
        """Whether a member of `groups` may see and use this template."""
        return not self.groups or bool(set(self.groups) & set(groups))


@dataclass(frozen=True)
class MachineResources:
    """What the server may use: its spawner's limits (`CPU_LIMIT`, `MEM_LIMIT`), else the machine."""

    cpus: float
    memory: int  # bytes


def make_machine_resources(environ: Mapping[str, str], cpu_count: int, total_memory: int) -> MachineResources:
    """The server's CPU and memory budget: JupyterHub's `CPU_LIMIT`/`MEM_LIMIT` when set, else the machine."""
    cpus = float(cpu_count)
    memory = total_memory
    try:
        if float(environ.get("CPU_LIMIT", "0")) > 0:
            cpus = min(cpus, float(environ["CPU_LIMIT"]))
        if int(float(environ.get("MEM_LIMIT", "0"))) > 0:
            memory = min(memory, int(float(environ["MEM_LIMIT"])))
    except ValueError:
        pass  # a malformed limit is the spawner's bug; the machine's size is the safe fallback
    return MachineResources(cpus=cpus, memory=memory)


def make_default_templates(machine: MachineResources) -> dict:
    """The configuration used when the admin declared no template: one `local` template.

    Workers and cores are bounded by the server's CPUs; memory per worker by its memory, so a user
    can use the whole server but a single worker cannot ask for more than there is.
    """
    cpus = max(1, math.floor(machine.cpus))
    memory_gib = max(0.5, math.floor(machine.memory / GIB * 10) / 10)
    default_workers = min(2, cpus)
    return {
        "local": {
            "title": "Local cluster",
            "description": f"Dask workers on this server ({cpus} CPUs, {memory_gib:g} GiB).",
            "backend": "local",
            "options": {
                "workers": {"default": default_workers, "minimum": 0, "maximum": cpus},
                "cores": {"default": 1, "minimum": 1, "maximum": cpus},
                "memory": {
                    "default": math.floor(memory_gib / default_workers * 10) / 10,
                    "minimum": min(0.5, memory_gib),
                    "maximum": memory_gib,
                },
                "idle_timeout": {"default": 60, "minimum": 0, "maximum": 1440},
            },
        }
    }


def normalise_keys(config: Mapping) -> dict:
    """Dask config keys may spell `_` as `-` (`idle-timeout`); templates use `_` throughout."""
    return {str(key).replace("-", "_"): value for key, value in config.items()}


def make_templates(
    templates: Mapping,
    origins: Mapping[str, str],
    backend_schemas: Mapping[str, dict],
    local_environments: Sequence[Environment] = (),
) -> dict[str, ClusterTemplate]:
    """Build and check every template of the merged configuration.

    :param templates: template name -> the merged template mapping (Dask config, hub file, traitlets).
    :param origins: template name -> where it was defined, for error messages (a file, a variable).
    :param backend_schemas: backend name -> JSON Schema of its admin-only `backend_settings`.
    :param local_environments: what the `local` backend can run: the kernels' interpreters (`local_environments`).
    :raises TemplateError: naming origin, template and field of the first problem found.
    """
    result = {}
    for name, raw in templates.items():
        name = str(name)
        origin = origins.get(name, "the Dask configuration")

        def fail(where: str, problem: str, name=name, origin=origin):
            raise TemplateError(f"{origin}: template '{name}': {where}: {problem}")

        if not jsonschema.Draft202012Validator({"pattern": TEMPLATE_NAME_PATTERN}).is_valid(name):
            fail(
                "name",
                f"{name!r} must be letters, digits, '.', '_' or '-' (at most 63), starting with a letter or digit",
            )
        if not isinstance(raw, Mapping):
            fail("template", f"must be a mapping, got {type(raw).__name__}")
        raw = normalise_keys(raw)
        if isinstance(raw.get("options"), Mapping):
            raw["options"] = normalise_keys(raw["options"])
        _check_schema(TEMPLATE_SCHEMA, raw, "", fail)

        backend = raw["backend"]
        if backend not in backend_schemas:
            fail("backend", f"{backend!r} is not a backend; choose one of: {', '.join(sorted(backend_schemas))}")
        settings = raw.get("backend_settings", {})
        _check_schema(backend_schemas[backend], settings, "backend_settings", fail)

        bounds = {}
        for option, spec in NUMERIC_OPTIONS.items():
            if option in raw.get("options", {}) and not offers_option(backend, option):
                fail(
                    f"options.{option}",
                    f"the {backend} backend has no {spec['title'].lower()}; only "
                    f"{', '.join(spec['backends'])} templates do",
                )
            values = {**spec["default"], **raw.get("options", {}).get(option, {})}
            bound = Bounds(**values)
            if not bound.minimum <= bound.default <= bound.maximum:
                fail(
                    f"options.{option}",
                    f"default {bound.default:g} must lie between minimum {bound.minimum:g} "
                    f"and maximum {bound.maximum:g}",
                )
            if spec["integer"] and not all(float(v).is_integer() for v in values.values()):
                fail(f"options.{option}", f"{spec['title'].lower()} must be whole numbers, got {values}")
            bounds[option] = bound

        if backend == "local" and "environments" not in raw:
            environments = tuple(local_environments)
        else:
            environments = tuple(
                Environment(
                    name=e["name"],
                    title=e.get("title", e["name"]),
                    value=e["value"],
                    kernels=tuple(e.get("kernels", ())),
                )
                for e in raw.get("environments", ())
            )
        names = [e.name for e in environments]
        if len(set(names)) != len(names):
            fail("environments", f"names must be unique, got {names}")
        default_environment = raw.get("default_environment", names[0] if names else None)
        if default_environment is not None and default_environment not in names:
            fail("default_environment", f"{default_environment!r} is not one of the environments: {', '.join(names)}")

        result[name] = ClusterTemplate(
            name=name,
            title=raw.get("title", name),
            description=raw.get("description", ""),
            backend=backend,
            origin=origin,
            adaptive=raw.get("adaptive", True),
            groups=tuple(raw.get("groups", ())),
            environments=environments,
            default_environment=default_environment,
            backend_settings=dict(settings),
            **bounds,
        )
    return result


def make_limits(limits: Mapping, origin: str) -> dict:
    """Check the `sciencelab.clusters.limits` section (see `limits.resolve_limits`)."""

    def fail(where: str, problem: str):
        raise TemplateError(f"{origin}: limits: {where}: {problem}")

    if not isinstance(limits, Mapping):
        fail("limits", f"must be a mapping, got {type(limits).__name__}")
    _check_schema(LIMITS_SCHEMA, limits, "", fail)
    return dict(limits)


def _check_schema(schema: dict, instance, prefix: str, fail: Callable[[str, str], None]):
    """Validate `instance`; report the best error as `fail(dotted field path below prefix, sentence)`."""
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(instance))
    if error is not None:
        where = ".".join([prefix, *(str(part) for part in error.absolute_path)]).strip(".")
        fail(where or "top level", error.message)


@dataclass(frozen=True)
class Interpreter:
    """A Python interpreter a kernel starts: `path` runs it; `environment` is the directory of the
    software it runs (its virtual environment, else its installation prefix). Two paths with the same
    environment run the same packages: `/usr/bin/python3` and `/usr/bin/python3.11`, say."""

    path: str
    environment: str


# What jupyter_client starts as the server's own interpreter (`KernelManager.format_kernel_cmd`),
# and the file names of Python interpreters elsewhere (`python`, `python3`, `python3.12`).
_PYTHON_ALIASES = {"python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"}
_PYTHON_NAME = re.compile(r"python[0-9]*(\.[0-9]+)?")


def kernel_interpreter(spec: Mapping, server_python: str) -> str | None:
    """The interpreter command a kernelspec starts, resolved as jupyter_client resolves its `argv[0]`.

    `python`, `python3` and `python3.X` mean the server's interpreter; another command counts only
    when it is named like a Python interpreter. None for the rest (another language, a wrapper
    script, `conda run`, xeus-python): what their workers would need cannot be told without running
    them, so such kernels are not offered.
    """
    argv = spec.get("argv") or [""]
    command = argv[0]
    if command in _PYTHON_ALIASES:
        return server_python
    return command if _PYTHON_NAME.fullmatch(os.path.basename(command)) else None


def local_environments(
    kernel_specs: Mapping, server: Interpreter, interpreters: Mapping[str, Interpreter]
) -> list[Environment]:
    """The environments a `local` template offers: one per kernel whose interpreter can run a worker.

    Kernels on the server's own software come first (the first is the default): their workers
    start from the server's fork server, the fast path. Kernels on another interpreter follow; their
    workers are processes of that interpreter, so a notebook's client and its workers run the same
    packages. `kernel_specs` is `KernelSpecManager.get_all_specs()`; `interpreters` maps each
    kernel's command (`kernel_interpreter`) to where it was found (a command not found is left out).
    An environment's `value` is the interpreter its workers run: the server's own for its software.
    """
    own, other = [], []
    for name, kernel in sorted(kernel_specs.items()):
        spec = kernel.get("spec", {})
        command = kernel_interpreter(spec, server.path)
        interpreter = interpreters.get(command) if command is not None else None
        if interpreter is None:
            continue
        same = interpreter.environment == server.environment
        (own if same else other).append(
            Environment(
                name=name,
                title=spec.get("display_name", name),
                value=server.path if same else interpreter.path,
                kernels=(name,),
            )
        )
    return own + other or [Environment(name="server", title="This server's Python", value=server.path)]
