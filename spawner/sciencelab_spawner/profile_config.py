"""The admin's profile configuration: checked against `profiles.schema.yaml`, turned into frozen values.

Pure: plain data (a parsed YAML file or the `profiles` traitlet) in, a `ProfileConfig` out, or a
`ProfileConfigError` that names the source, the profile and the field at fault.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib.resources import files
from types import MappingProxyType

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

# Inline sizes (`size: {cpu_limit: 2}`) live in the size catalog under a name no admin can write:
# catalog names may not contain '/'.
INLINE_SIZE_PREFIX = "inline/"
DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"
# Memory suffixes as JupyterHub's `ByteSpecification` reads them: powers of 1024.
MEMORY_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
HOUR = 3600
# Servers holding GPUs are stopped after this many idle seconds unless the admin says otherwise.
DEFAULT_GPU_IDLE_TIMEOUT = 2 * HOUR
# The label every node carries with its own name: `offload.node` given as a name selects it.
NODE_NAME_LABEL = "kubernetes.io/hostname"
# `sbatch` options interLink's SLURM plugin sets itself from the pod's limits (`offload.resources`);
# the same option in `offload.job_flags` would contradict them.
# ref: https://github.com/interlink-hq/interlink-slurm-plugin/blob/f8451d93e063b7addc606d227a525fe614d91958/pkg/slurm/prepare.go#L1139-L1155
JOB_FLAGS_FROM_RESOURCES = {
    "--cpus-per-task": "offload.resources.cpu",
    "--mem": "offload.resources.memory",
    "--mem-per-cpu": "offload.resources.memory",
    "--mem-per-gpu": "offload.resources.memory",
}
# What an offloaded profile may not have, and why: the pod runs as a batch job on the HPC side.
NOT_OFFLOADED = {
    "size": "its CPU and memory are `offload.resources`",
    "gpu": "the hub's GPU models are the cluster's GPU nodes; ask for HPC GPUs with `offload.resources.gpus`",
    "cvmfs": (
        "interLink's SLURM plugin mounts only Secret, ConfigMap, emptyDir and projected volumes, "
        "not the cvmfs-csi claim or the cluster nodes' /cvmfs"
    ),
    "s3": (
        "interLink's SLURM plugin mounts only Secret, ConfigMap, emptyDir and projected volumes, "
        "not the buckets' CSI volumes"
    ),
    "collaborative": (
        "the collaboration switch changes the server's image and drops its GPUs, which the batch job's "
        "`offload.job_flags` fix"
    ),
    "node_selector": "the pod goes to the virtual node `offload.node` selects; put more labels there",
    "tolerations": "put them in `offload.tolerations`",
}


class ProfileConfigError(ValueError):
    """The admin's profile configuration is wrong; the message names source, profile and field."""


@dataclass(frozen=True)
class Image:
    name: str
    display_name: str
    image: str
    description: str = ""


@dataclass(frozen=True)
class Size:
    """CPU in cores, memory in bytes; `None` where the admin declared nothing."""

    name: str
    display_name: str
    cpu_guarantee: float | None = None
    cpu_limit: float | None = None
    mem_guarantee: int | None = None
    mem_limit: int | None = None


@dataclass(frozen=True)
class GpuModel:
    name: str
    display_name: str
    node_label: str | None = None
    resource: str = DEFAULT_GPU_RESOURCE
    slurm_gres: str | None = None  # the type in `--gres=gpu:<type>:<count>`

    @property
    def mig_profile(self) -> str | None:
        """`1g.10gb` for the resource `nvidia.com/mig-1g.10gb`; None for whole GPUs."""
        prefix = "nvidia.com/mig-"
        return self.resource[len(prefix) :] if self.resource.startswith(prefix) else None


@dataclass(frozen=True)
class CvmfsRepository:
    name: str
    display_name: str

    @property
    def mount_path(self) -> str:
        return f"/cvmfs/{self.name}"


@dataclass(frozen=True)
class S3Bucket:
    name: str
    display_name: str
    endpoint: str
    bucket: str
    read_only: bool = False


@dataclass(frozen=True)
class Choice:
    """One value a user may pick; `allowed_groups` empty means everyone."""

    value: str | bool
    allowed_groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SingleOption:
    """A value fixed by the admin (one choice) or picked by the user from `choices`."""

    choices: tuple[Choice, ...]
    default: str | bool

    @property
    def offered(self) -> bool:
        return len(self.choices) > 1


@dataclass(frozen=True)
class MultiOption:
    """Several values: fixed by the admin, or ticked by the user from `choices`."""

    choices: tuple[Choice, ...]
    default: tuple[str, ...]
    offered: bool


@dataclass(frozen=True)
class CountOption:
    minimum: int
    maximum: int
    default: int

    @property
    def offered(self) -> bool:
        return self.minimum != self.maximum


@dataclass(frozen=True)
class Lifetime:
    """How long a server may run, in seconds: fixed, or chosen by the user in whole hours."""

    minimum: int
    maximum: int
    default: int

    @property
    def offered(self) -> bool:
        return self.minimum != self.maximum

    @property
    def hours(self) -> CountOption:
        """The user's choice, in whole hours (the builder checks the bounds are whole hours)."""
        return CountOption(self.minimum // HOUR, self.maximum // HOUR, self.default // HOUR)


@dataclass(frozen=True)
class Extension:
    """What one Extend adds (`step`) and the longest a session may run in all (`cap`), in seconds."""

    step: int
    cap: int


@dataclass(frozen=True)
class CollaborativeOption:
    switch: SingleOption
    image: str | None = None
    use_gpu: bool = False


@dataclass(frozen=True)
class SlurmSettings:
    """`runs_on: slurm`: where the job goes (each fixed or a user choice) and how it starts."""

    partition: SingleOption | None = None
    account: SingleOption | None = None
    qos: SingleOption | None = None
    modules: tuple[str, ...] = ()
    setup: tuple[str, ...] = ()
    container: str | None = None


@dataclass(frozen=True)
class Offload:
    """Where an offloaded profile's pod goes (an interLink virtual node) and what its batch job asks for.

    `node_selector` selects the virtual node; `tolerations` are the admin's besides interLink's own;
    `gpus` is the pod's `nvidia.com/gpu` limit; `job_flags` are whole `sbatch` options. CPU and
    memory become the profile's fixed size.
    """

    node_selector: Mapping[str, str]
    tolerations: tuple[Mapping, ...] = ()
    gpus: int = 0
    job_flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    slug: str
    display_name: str
    description: str = ""
    default: bool = False
    allowed_groups: frozenset[str] = frozenset()
    image: SingleOption | None = None
    size: SingleOption | None = None
    gpu_model: SingleOption | None = None
    gpu_count: CountOption | None = None
    cvmfs: MultiOption | None = None
    s3: MultiOption | None = None
    collaborative: CollaborativeOption | None = None
    lifetime: Lifetime | None = None
    # Seconds; 0: never; None: the `sessions` default.
    idle_timeout: int | None = None
    extend: Extension | None = None
    # "local", "kubernetes" or "slurm"; None: the hub's own spawner.
    runs_on: str | None = None
    slurm: SlurmSettings | None = None
    dask_config: str | None = None
    environment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    node_selector: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    tolerations: tuple[Mapping, ...] = ()
    # Run on an HPC cluster through an interLink virtual node; None: on the cluster's own nodes.
    offload: Offload | None = None


@dataclass(frozen=True)
class SessionDefaults:
    """The `sessions` section: idle timeouts in seconds (0: never) and the exempt groups."""

    idle_timeout: int = 0
    gpu_idle_timeout: int = DEFAULT_GPU_IDLE_TIMEOUT
    exempt_groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class GroupQuota:
    max_gpus_per_user: int | None = None
    max_gpus: int | None = None


@dataclass(frozen=True)
class Quotas:
    max_gpus_per_user: int | None = None
    groups: Mapping[str, GroupQuota] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class ProfileConfig:
    """Everything the admin declared; `source` says where it came from, for messages."""

    profiles: tuple[Profile, ...]
    images: Mapping[str, Image]
    sizes: Mapping[str, Size]
    gpu_models: Mapping[str, GpuModel]
    cvmfs_repositories: Mapping[str, CvmfsRepository]
    s3_buckets: Mapping[str, S3Bucket]
    quotas: Quotas
    source: str
    sessions: SessionDefaults = field(default_factory=SessionDefaults)


@cache
def profiles_schema() -> dict:
    """The JSON Schema of a profile file (`profiles.schema.yaml`, shipped in this package)."""
    return yaml.safe_load(files(__package__).joinpath("profiles.schema.yaml").read_text())


def load_profiles_yaml(text: str, source: str) -> ProfileConfig:
    """Parse and check the text of a profile file; `source` (its path) goes into every message."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ProfileConfigError(f"{source}: not valid YAML{where}: {problem}") from None
    return make_profile_config(data, source)


def make_profile_config(data: object, source: str) -> ProfileConfig:
    """Check `data` (a profile file's content) against the schema and the catalogs.

    The result is cached by content: every spawner of a hub configured with the same `profiles`
    setting shares one check (a large file takes a fraction of a second to check).
    """
    try:
        key = json.dumps(data, sort_keys=True)
    except (TypeError, ValueError):
        key = None  # not JSON-like: the schema check below says what is wrong
    if key is None:
        return _check_profile_config(data, source)
    return _cached_profile_config(key, source)


@lru_cache(maxsize=16)
def _cached_profile_config(key: str, source: str) -> ProfileConfig:
    return _check_profile_config(json.loads(key), source)


def _check_profile_config(data: object, source: str) -> ProfileConfig:
    if isinstance(data, list):
        # The `profiles` traitlet may be just the list of profiles, with everything inline.
        data = {"profiles": data}
    validator = _profiles_validator()
    # is_valid first: collecting every error to pick the best is several times slower.
    if not validator.is_valid(data):
        error = best_match(validator.iter_errors(data))
        raise ProfileConfigError(f"{source}: {_locate(data, list(error.absolute_path))}: {_describe(error)}")
    return _ConfigBuilder(data, source).build()


@cache
def _profiles_validator() -> Draft202012Validator:
    return Draft202012Validator(profiles_schema())


def parse_memory(value: int | str) -> int:
    """Bytes from `4G`-style sizes (powers of 1024, as JupyterHub reads them) or a whole number."""
    if isinstance(value, int):
        return value
    if value[-1] in MEMORY_UNITS:
        return int(float(value[:-1]) * MEMORY_UNITS[value[-1]])
    return int(float(value))


def parse_duration(value: int | str) -> int:
    """Whole seconds from `90m`-style durations or a whole number of seconds."""
    if isinstance(value, int):
        return value
    return round(float(value[:-1]) * DURATION_UNITS[value[-1]])


def _locate(data: object, path: list) -> str:
    """`profile 'gpu' (profiles[2]), gpu.count.max` for the schema path of an error."""
    if len(path) >= 2 and path[0] == "profiles" and isinstance(path[1], int):
        entry = data["profiles"][path[1]]
        slug = entry.get("slug") if isinstance(entry, dict) else None
        where = f"profile {slug!r} (profiles[{path[1]}])" if isinstance(slug, str) else f"profiles[{path[1]}]"
        rest = _dotted(path[2:])
        return f"{where}, {rest}" if rest else where
    return _dotted(path) or "the top level"


def _dotted(path: list) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _describe(error: ValidationError) -> str:
    """A sentence for a schema error: what is wrong with which value, and what is allowed."""
    schema, value = error.schema, error.instance
    if error.validator == "additionalProperties":
        known = ", ".join(schema.get("properties", {})) or "(none)"
        unknown = sorted(set(value) - set(schema.get("properties", {})))
        return f"unknown field {unknown[0]!r}; known fields: {known}"
    if error.validator == "required":
        missing = next(name for name in error.validator_value if name not in value)
        return f"missing required field {missing!r}"
    hint = schema.get("description")
    if error.validator == "type":
        return f"expected {_a(error.validator_value)}, got {value!r}" + (f" ({hint})" if hint else "")
    # A failed branch of `anyOf` (memory: a number or a '4G' string) is described by its parent.
    hint = hint or (error.parent.schema.get("description") if error.parent else None)
    if error.validator in ("pattern", "propertyNames"):
        return f"{value!r} is not valid" + (f": {hint}" if hint else f": must match {error.validator_value}")
    if error.validator in ("oneOf", "anyOf"):
        return f"{value!r} is not valid" + (f": {hint}" if hint else "")
    if error.validator == "enum":
        return f"{value!r} is not one of: {', '.join(map(str, error.validator_value))}"
    if error.validator in ("minimum", "exclusiveMinimum"):
        relation = ">=" if error.validator == "minimum" else ">"
        return f"must be {relation} {error.validator_value}, got {value!r}"
    if error.validator == "minItems":
        entries = "entry" if error.validator_value == 1 else "entries"
        return f"needs at least {error.validator_value} {entries}, got {len(value)}"
    if error.validator in ("minLength", "minProperties"):
        return "must not be empty"
    if error.validator == "uniqueItems":
        return f"lists an entry twice: {value!r}"
    return error.message


def _a(json_type: str | list) -> str:
    names = {
        "string": "a string",
        "integer": "a whole number",
        "number": "a number",
        "boolean": "true or false",
        "object": "a mapping",
        "array": "a list",
        "null": "nothing",
    }
    types = json_type if isinstance(json_type, list) else [json_type]
    return " or ".join(names.get(t, t) for t in types)


class _ConfigBuilder:
    """Turns schema-valid data into a `ProfileConfig`, checking what a schema cannot express:
    names refer to catalog entries, defaults are among the choices, bounds are ordered."""

    def __init__(self, data: dict, source: str):
        self.data = data
        self.source = source
        self.images = {
            name: Image(name, spec.get("display_name", name), spec["image"], spec.get("description", ""))
            for name, spec in data.get("images", {}).items()
        }
        self.sizes = {name: self._size(name, spec, f"sizes.{name}") for name, spec in data.get("sizes", {}).items()}
        self.gpu_models = {
            name: GpuModel(
                name,
                spec.get("display_name", name),
                spec.get("node_label"),
                spec.get("resource", DEFAULT_GPU_RESOURCE),
                spec.get("slurm_gres"),
            )
            for name, spec in data.get("gpu_models", {}).items()
        }
        self.cvmfs = {
            name: CvmfsRepository(name, spec.get("display_name", name))
            for name, spec in data.get("cvmfs_repositories", {}).items()
        }
        self.s3 = {
            name: S3Bucket(
                name, spec.get("display_name", name), spec["endpoint"], spec["bucket"], spec.get("read_only", False)
            )
            for name, spec in data.get("s3_buckets", {}).items()
        }

    def fail(self, where: str, problem: str):
        raise ProfileConfigError(f"{self.source}: {where}: {problem}")

    def build(self) -> ProfileConfig:
        profiles = tuple(self._profile(index, entry) for index, entry in enumerate(self.data["profiles"]))
        slugs = [p.slug for p in profiles]
        duplicates = sorted({s for s in slugs if slugs.count(s) > 1})
        if duplicates:
            self.fail("profiles", f"duplicate slug(s): {', '.join(duplicates)}")
        defaults = [p.slug for p in profiles if p.default]
        if len(defaults) > 1:
            self.fail("profiles", f"at most one profile may be the default, got: {', '.join(defaults)}")
        quotas = self.data.get("quotas", {})
        sessions = self.data.get("sessions", {})
        return ProfileConfig(
            profiles=profiles,
            images=MappingProxyType(self.images),
            sizes=MappingProxyType(self.sizes),
            gpu_models=MappingProxyType(self.gpu_models),
            cvmfs_repositories=MappingProxyType(self.cvmfs),
            s3_buckets=MappingProxyType(self.s3),
            quotas=Quotas(
                max_gpus_per_user=quotas.get("max_gpus_per_user"),
                groups=MappingProxyType(
                    {
                        group: GroupQuota(spec.get("max_gpus_per_user"), spec.get("max_gpus"))
                        for group, spec in quotas.get("groups", {}).items()
                    }
                ),
            ),
            source=self.source,
            sessions=SessionDefaults(
                idle_timeout=parse_duration(sessions.get("idle_timeout", 0)),
                gpu_idle_timeout=parse_duration(sessions.get("gpu_idle_timeout", DEFAULT_GPU_IDLE_TIMEOUT)),
                exempt_groups=frozenset(sessions.get("exempt_groups", ())),
            ),
        )

    def _size(self, name: str, spec: dict, where: str) -> Size:
        size = Size(
            name=name,
            display_name=spec.get("display_name", name),
            cpu_guarantee=_float_or_none(spec.get("cpu_guarantee")),
            cpu_limit=_float_or_none(spec.get("cpu_limit")),
            mem_guarantee=None if "mem_guarantee" not in spec else parse_memory(spec["mem_guarantee"]),
            mem_limit=None if "mem_limit" not in spec else parse_memory(spec["mem_limit"]),
        )
        for kind in ("cpu", "mem"):
            guarantee, limit = getattr(size, f"{kind}_guarantee"), getattr(size, f"{kind}_limit")
            if guarantee is not None and limit is not None and guarantee > limit:
                self.fail(
                    where,
                    f"{kind}_guarantee {spec[f'{kind}_guarantee']!r} is above {kind}_limit {spec[f'{kind}_limit']!r}",
                )
        return size

    def _profile(self, index: int, entry: dict) -> Profile:
        where = f"profile {entry['slug']!r} (profiles[{index}])"
        slug = entry["slug"]
        size = entry.get("size")
        if isinstance(size, dict) and "choices" not in size:
            inline_name = INLINE_SIZE_PREFIX + slug
            self.sizes[inline_name] = self._size(inline_name, size, f"{where}, size")
            size = inline_name
        offload = self._offload(entry, where)
        if offload is not None:
            # The job's CPU and memory are the profile's fixed size: the spawner, the form and the
            # server's panel treat them as any size.
            size = INLINE_SIZE_PREFIX + slug
            self.sizes[size] = _offload_size(size, entry["offload"]["resources"])
        gpu = entry.get("gpu")
        gpu_model = gpu_count = None
        if gpu is not None:
            gpu_model = self._single(gpu["model"], self.gpu_models, "gpu_models", f"{where}, gpu.model")
            gpu_count = self._count(gpu.get("count", 1), f"{where}, gpu.count")
        collaborative = None
        if "collaborative" in entry:
            spec = entry["collaborative"]
            if isinstance(spec, bool):
                collaborative = CollaborativeOption(SingleOption((Choice(spec),), spec))
            else:
                image = spec.get("image")
                if image is not None and image not in self.images:
                    self._unknown(f"{where}, collaborative.image", image, "images", self.images)
                collaborative = CollaborativeOption(
                    self._single(spec, None, "", f"{where}, collaborative"), image, spec.get("use_gpu", False)
                )
        lifetime = self._lifetime(entry.get("lifetime"), f"{where}, lifetime")
        slurm = self._slurm(entry, lifetime, where)
        return Profile(
            slug=slug,
            display_name=entry["display_name"],
            description=entry.get("description", ""),
            default=entry.get("default", False),
            allowed_groups=frozenset(entry.get("allowed_groups", ())),
            image=self._optional_single(entry.get("image"), self.images, "images", f"{where}, image"),
            size=self._optional_single(size, self.sizes, "sizes", f"{where}, size"),
            gpu_model=gpu_model,
            gpu_count=gpu_count,
            cvmfs=self._optional_multi(entry.get("cvmfs"), self.cvmfs, "cvmfs_repositories", f"{where}, cvmfs"),
            s3=self._optional_multi(entry.get("s3"), self.s3, "s3_buckets", f"{where}, s3"),
            collaborative=collaborative,
            lifetime=lifetime,
            idle_timeout=None if "idle_timeout" not in entry else parse_duration(entry["idle_timeout"]),
            extend=self._extension(entry.get("extend"), lifetime, f"{where}, extend"),
            runs_on=entry.get("runs_on"),
            slurm=slurm,
            dask_config=entry.get("dask_config"),
            environment=MappingProxyType(dict(entry.get("environment", {}))),
            node_selector=MappingProxyType(dict(entry.get("node_selector", {}))),
            tolerations=tuple(MappingProxyType(dict(t)) for t in entry.get("tolerations", ())),
            offload=offload,
        )

    def _offload(self, entry: dict, where: str) -> Offload | None:
        spec = entry.get("offload")
        if spec is None:
            return None
        for name, reason in NOT_OFFLOADED.items():
            if name in entry:
                self.fail(f"{where}, {name}", f"an offloaded profile (with `offload`) cannot have it: {reason}")
        if entry.get("runs_on", "kubernetes") != "kubernetes":
            self.fail(
                f"{where}, runs_on",
                f"{entry['runs_on']!r}: `offload` sends a Kubernetes pod to a virtual node; only a "
                "Kubernetes profile has one",
            )
        for index, flag in enumerate(spec.get("job_flags", ())):
            option = flag.split("=", 1)[0]
            if option in JOB_FLAGS_FROM_RESOURCES:
                self.fail(
                    f"{where}, offload.job_flags[{index}]",
                    f"{flag!r}: the SLURM plugin sets {option} from the pod's limits; "
                    f"set {JOB_FLAGS_FROM_RESOURCES[option]} instead",
                )
        node = spec["node"]
        return Offload(
            node_selector=MappingProxyType({NODE_NAME_LABEL: node} if isinstance(node, str) else dict(node)),
            tolerations=tuple(MappingProxyType(dict(t)) for t in spec.get("tolerations", ())),
            gpus=spec["resources"].get("gpus", 0),
            job_flags=tuple(spec.get("job_flags", ())),
        )

    def _unknown(self, where: str, name: object, catalog_name: str, catalog: Mapping):
        known = ", ".join(catalog) if catalog else "(none declared)"
        self.fail(where, f"{name!r} is not in {catalog_name}; declared: {known}")

    def _choices(self, entries: list, catalog: Mapping | None, catalog_name: str, where: str) -> tuple[Choice, ...]:
        choices = []
        for entry in entries:
            value, groups = (
                (entry["value"], entry.get("allowed_groups", ())) if isinstance(entry, dict) else (entry, ())
            )
            if catalog is not None and value not in catalog:
                self._unknown(f"{where}.choices", value, catalog_name, catalog)
            if any(choice.value == value for choice in choices):
                self.fail(f"{where}.choices", f"{value!r} is listed twice")
            choices.append(Choice(value, frozenset(groups)))
        return tuple(choices)

    def _single(self, spec, catalog: Mapping | None, catalog_name: str, where: str) -> SingleOption:
        if not isinstance(spec, dict):
            if catalog is not None and spec not in catalog:
                self._unknown(where, spec, catalog_name, catalog)
            return SingleOption((Choice(spec),), spec)
        choices = self._choices(spec["choices"], catalog, catalog_name, where)
        default = spec.get("default", choices[0].value)
        if all(choice.value != default for choice in choices):
            self.fail(
                f"{where}.default", f"{default!r} is not among the choices: {', '.join(str(c.value) for c in choices)}"
            )
        return SingleOption(choices, default)

    def _optional_single(self, spec, catalog: Mapping, catalog_name: str, where: str) -> SingleOption | None:
        return None if spec is None else self._single(spec, catalog, catalog_name, where)

    def _optional_multi(self, spec, catalog: Mapping, catalog_name: str, where: str) -> MultiOption | None:
        if spec is None:
            return None
        if isinstance(spec, list):
            choices = self._choices(spec, catalog, catalog_name, where)
            return MultiOption(choices, tuple(spec), offered=False)
        choices = self._choices(spec["choices"], catalog, catalog_name, where)
        default = tuple(spec.get("default", ()))
        strays = [name for name in default if all(choice.value != name for choice in choices)]
        if strays:
            self.fail(
                f"{where}.default",
                f"{strays[0]!r} is not among the choices: {', '.join(str(c.value) for c in choices)}",
            )
        return MultiOption(choices, default, offered=True)

    def _lifetime(self, spec, where: str) -> Lifetime | None:
        if spec is None:
            return None
        if not isinstance(spec, dict):
            seconds = parse_duration(spec)
            return Lifetime(seconds, seconds, seconds)
        bounds = {name: parse_duration(spec[name]) for name in ("min", "max", "default") if name in spec}
        minimum, maximum = bounds.get("min", HOUR), bounds["max"]
        default = bounds.get("default", minimum)
        if not minimum <= default <= maximum:
            self.fail(where, f"needs min <= default <= max, got min {minimum} s, default {default} s, max {maximum} s")
        lifetime = Lifetime(minimum, maximum, default)
        if lifetime.offered:
            uneven = next((name for name in ("min", "max", "default") if bounds.get(name, HOUR) % HOUR), None)
            if uneven:
                self.fail(
                    f"{where}.{uneven}",
                    f"{spec[uneven]!r} is not a whole number of hours; users choose a lifetime in hours",
                )
        return lifetime

    def _slurm(self, entry: dict, lifetime: Lifetime | None, where: str) -> SlurmSettings | None:
        if entry.get("runs_on") != "slurm":
            if "slurm" in entry:
                self.fail(f"{where}, slurm", "only a profile with `runs_on: slurm` runs as a SLURM job")
            return None
        if lifetime is None:
            self.fail(where, "a profile with `runs_on: slurm` needs a `lifetime`: it is the job's walltime")
        if "extend" in entry:
            self.fail(f"{where}, extend", "a SLURM job's walltime cannot grow once it runs; drop `extend`")
        spec = entry.get("slurm", {})
        return SlurmSettings(
            **{
                name: self._single(spec[name], None, "", f"{where}, slurm.{name}")
                for name in ("partition", "account", "qos")
                if name in spec
            },
            modules=tuple(spec.get("modules", ())),
            setup=tuple(spec.get("setup", ())),
            container=spec.get("container"),
        )

    def _extension(self, spec, lifetime: Lifetime | None, where: str) -> Extension | None:
        if spec is None:
            return None
        if lifetime is None:
            self.fail(where, "a profile without a lifetime has nothing to extend; add `lifetime`")
        cap = parse_duration(spec["cap"]) if "cap" in spec else lifetime.maximum
        if cap < lifetime.maximum:
            self.fail(
                f"{where}.cap",
                f"{spec['cap']!r} is shorter than the longest lifetime ({lifetime.maximum} s) it extends",
            )
        return Extension(parse_duration(spec["step"]), cap)

    def _count(self, spec, where: str) -> CountOption:
        if isinstance(spec, int):
            return CountOption(spec, spec, spec)
        minimum = spec.get("min", 1)
        maximum = spec["max"]
        default = spec.get("default", minimum)
        if not minimum <= default <= maximum:
            self.fail(where, f"needs min <= default <= max, got min {minimum}, default {default}, max {maximum}")
        return CountOption(minimum, maximum, default)


def _offload_size(name: str, resources: dict) -> Size:
    """The fixed size of an offloaded profile: requests equal to limits, since the scheduler fits
    the requests on the virtual node and the SLURM plugin reads the limits."""
    cpu, memory = float(resources["cpu"]), parse_memory(resources["memory"])
    gpus = resources.get("gpus", 0)
    described = f"{resources['cpu']} CPU{'s' if resources['cpu'] != 1 else ''}, {resources['memory']} memory"
    if gpus:
        described += f", {gpus} GPU{'s' if gpus != 1 else ''}"
    return Size(name, f"{described} on the HPC cluster", cpu, cpu, memory, memory)


def _float_or_none(value: int | float | None) -> float | None:
    return None if value is None else float(value)
