"""The pure core of the Dask cluster manager: templates, options, limits, cluster JSON, connect code."""

import ast
import re
import sys

import pytest

from sciencelab.dask.backends.local import main_script_modules, make_worker_spec
from sciencelab.dask.clusters import ClusterRecord, ClusterView, WorkerInfo, make_cluster_json, workers_from_identity
from sciencelab.dask.connect import Call, ConnectRecipe, make_connect_code
from sciencelab.dask.credentials import TlsFiles, tls_client_recipe
from sciencelab.dask.errors import LimitError, OptionError
from sciencelab.dask.interpreters import ProbeResult, worker_interpreter_problem
from sciencelab.dask.limits import Limits, Usage, check_limits, make_local_limits, resolve_limits
from sciencelab.dask.manager import ClusterManager
from sciencelab.dask.options import ClusterOptions, make_option_schema, validate_options, validate_scaling
from sciencelab.dask.templates import (
    GIB,
    Bounds,
    Environment,
    Interpreter,
    MachineResources,
    TemplateError,
    kernel_interpreter,
    local_environments,
    make_default_templates,
    make_machine_resources,
    make_templates,
)

BACKEND_SCHEMAS = {
    "local": {"type": "object", "properties": {"host": {"type": "string"}}, "additionalProperties": False},
    "gateway": {"type": "object"},
}
ORIGIN = "/etc/dask/sciencelab.yaml"
CMS_TEMPLATE = {
    "title": "CMS analysis",
    "description": "Workers with the CMS software",
    "backend": "gateway",
    "groups": ["cms"],
    "options": {
        "workers": {"default": 2, "minimum": 1, "maximum": 10},
        "cores": {"default": 2, "minimum": 1, "maximum": 4},
        "memory": {"default": 4, "minimum": 1, "maximum": 16},
    },
    "environments": [
        {"name": "lcg-105", "title": "LCG 105", "value": "registry.cern.ch/lcg:105", "kernels": ["python3"]},
        {"name": "lcg-106", "title": "LCG 106", "value": "registry.cern.ch/lcg:106"},
    ],
}


def cms_template():
    return make_templates({"cms": CMS_TEMPLATE}, {"cms": ORIGIN}, BACKEND_SCHEMAS)["cms"]


def test_machine_resources_prefer_the_spawners_limits():
    assert make_machine_resources({"CPU_LIMIT": "2.5", "MEM_LIMIT": str(4 * GIB)}, 8, 16 * GIB) == MachineResources(
        cpus=2.5, memory=4 * GIB
    )
    assert make_machine_resources({}, 8, 16 * GIB) == MachineResources(cpus=8, memory=16 * GIB)
    assert make_machine_resources({"CPU_LIMIT": "lots"}, 8, 16 * GIB) == MachineResources(cpus=8, memory=16 * GIB)


def test_default_template_is_local_and_sized_to_the_server():
    assert make_default_templates(MachineResources(cpus=4.0, memory=8 * GIB)) == {
        "local": {
            "title": "Local cluster",
            "description": "Dask workers on this server (4 CPUs, 8 GiB).",
            "backend": "local",
            "options": {
                "workers": {"default": 2, "minimum": 0, "maximum": 4},
                "cores": {"default": 1, "minimum": 1, "maximum": 4},
                "memory": {"default": 4.0, "minimum": 0.5, "maximum": 8.0},
                "idle_timeout": {"default": 60, "minimum": 0, "maximum": 1440},
            },
        }
    }


def test_template_is_built_with_defaults_for_what_the_admin_left_out():
    template = cms_template()
    assert template.workers == Bounds(2, 1, 10)
    assert template.gpus == Bounds(0, 0, 0)
    assert template.idle_timeout == Bounds(60, 0, 1440)
    assert template.default_environment == "lcg-105"
    assert template.groups == ("cms",)
    assert template.allows(["atlas", "cms"]) and not template.allows([])


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({}, "template 'broken': top level: 'backend' is a required property"),
        ({"backend": "yarn"}, "template 'broken': backend: 'yarn' is not a backend; choose one of: gateway, local"),
        (
            {"backend": "local", "options": {"workers": {"maximum": "ten"}}},
            "template 'broken': options.workers.maximum: 'ten' is not of type 'number'",
        ),
        (
            {"backend": "local", "options": {"workers": {"default": 9, "maximum": 4}}},
            "template 'broken': options.workers: default 9 must lie between minimum 0 and maximum 4",
        ),
        (
            {"backend": "local", "options": {"cores": {"default": 1.5, "maximum": 2}}},
            "template 'broken': options.cores: cores per worker must be whole numbers",
        ),
        (
            {"backend": "local", "options": {"wrokers": {}}},
            "template 'broken': options: Additional properties are not allowed ('wrokers' was unexpected)",
        ),
        (
            {"backend": "local", "backend_settings": {"hots": "0.0.0.0"}},
            "template 'broken': backend_settings: Additional properties are not allowed ('hots' was unexpected)",
        ),
        (
            {"backend": "gateway", "environments": [{"name": "a", "value": "img"}], "default_environment": "b"},
            "template 'broken': default_environment: 'b' is not one of the environments: a",
        ),
    ],
)
def test_broken_template_names_file_template_and_field(template, message):
    with pytest.raises(TemplateError) as error:
        make_templates({"broken": template}, {"broken": ORIGIN}, BACKEND_SCHEMAS)
    assert str(error.value).startswith(f"{ORIGIN}: {message}")


def test_dask_style_dashed_keys_are_accepted():
    template = make_templates(
        {"t": {"backend": "local", "options": {"idle-timeout": {"default": 5}}}}, {}, BACKEND_SCHEMAS
    )["t"]
    assert template.idle_timeout.default == 5


def _kernel(argv0: str, display_name: str) -> dict:
    return {
        "spec": {
            "argv": [argv0, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": display_name,
            "language": "python",
        }
    }


@pytest.mark.parametrize(
    ("argv0", "command"),
    [
        ("python", "/srv/venv/bin/python"),  # jupyter_client starts the server's interpreter for these
        ("python3", "/srv/venv/bin/python"),
        (f"python3.{sys.version_info[1]}", "/srv/venv/bin/python"),
        ("python3.99", "python3.99"),  # another Python, found on PATH when located
        ("/opt/conda/envs/hep/bin/python", "/opt/conda/envs/hep/bin/python"),
        ("/opt/py/bin/python3.13", "/opt/py/bin/python3.13"),
        ("/srv/venv/bin/xpython", None),
        ("/opt/lcg/bin/start-kernel.sh", None),
        ("conda", None),
        ("R", None),
        ("", None),
    ],
)
def test_kernel_interpreter_resolves_argv0_as_jupyter_client_does(argv0, command):
    assert kernel_interpreter(_kernel(argv0, "K")["spec"], "/srv/venv/bin/python") == command


def test_local_environments_are_the_kernels_interpreters_the_servers_first():
    server = Interpreter("/srv/venv/bin/python", "/srv/venv")
    interpreters = {
        "/srv/venv/bin/python": server,
        "/srv/venv/bin/python3": Interpreter("/srv/venv/bin/python3", "/srv/venv"),
        "/opt/conda/envs/hep/bin/python": Interpreter("/opt/conda/envs/hep/bin/python", "/opt/conda/envs/hep"),
        "python3.99": Interpreter("/usr/bin/python3.99", "/usr"),
    }
    specs = {
        "python3": _kernel("python", "Python 3"),
        "pinned": _kernel("/srv/venv/bin/python3", "Pinned"),
        "hep": _kernel("/opt/conda/envs/hep/bin/python", "HEP"),
        "system": _kernel("python3.99", "System Python"),
        "removed": _kernel("/opt/removed/bin/python", "Removed"),  # not found: not offered
        "ir": _kernel("R", "R"),
        "lcg": _kernel("/opt/lcg/bin/start-kernel.sh", "LCG"),
    }
    assert local_environments(specs, server, interpreters) == [
        Environment(name="pinned", title="Pinned", value="/srv/venv/bin/python", kernels=("pinned",)),
        Environment(name="python3", title="Python 3", value="/srv/venv/bin/python", kernels=("python3",)),
        Environment(name="hep", title="HEP", value="/opt/conda/envs/hep/bin/python", kernels=("hep",)),
        Environment(name="system", title="System Python", value="/usr/bin/python3.99", kernels=("system",)),
    ]
    assert local_environments({"ir": _kernel("R", "R")}, server, interpreters) == [
        Environment(name="server", title="This server's Python", value="/srv/venv/bin/python")
    ]


OTHER = Environment(name="py-other", title="Other", value="/opt/other/bin/python", kernels=("py-other",))


@pytest.mark.parametrize(
    ("probe", "problem"),
    [
        (ProbeResult(python="3.11.7", distributed="2026.8.0"), None),
        (
            ProbeResult(python="3.12.1", distributed="2025.1.0"),
            "environment 'py-other': /opt/other/bin/python has distributed 2025.1.0; the server has 2026.8.0; "
            "install distributed==2026.8.0 there or choose another environment (python3)",
        ),
        (
            ProbeResult(python="3.12.1", distributed=None),
            "environment 'py-other': /opt/other/bin/python does not have distributed; the server has 2026.8.0; "
            "install distributed==2026.8.0 there or choose another environment (python3)",
        ),
        (
            ProbeResult(failure="cannot be run (No such file or directory)"),
            "environment 'py-other': /opt/other/bin/python cannot be run (No such file or directory); "
            "choose another environment (python3)",
        ),
    ],
)
def test_worker_interpreter_problem_names_environment_interpreter_and_what_is_missing(probe, problem):
    assert worker_interpreter_problem(OTHER, probe, "2026.8.0", ["python3", "py-other"]) == problem


def test_an_interpreter_with_no_alternative_sends_the_user_to_the_admin():
    assert worker_interpreter_problem(
        OTHER, ProbeResult(failure="did not answer within 30 s", timed_out=True), "2026.8.0", ["py-other"]
    ) == ("environment 'py-other': /opt/other/bin/python did not answer within 30 s; ask your admin")


def test_worker_spec_is_a_nanny_as_local_cluster_starts_it():
    spec = make_worker_spec(
        3,
        nthreads=2,
        memory_limit=2**30,
        host="127.0.0.1",
        protocol="tls://",
        local_directory="/c",
        resources={"GPU": 1},
    )
    assert spec == {
        "cls": "distributed.Nanny",
        "opts": {
            "name": 3,
            "nthreads": 2,
            "memory_limit": 2**30,
            "host": "127.0.0.1",
            "protocol": "tls://",
            "local_directory": "/c",
            "death_timeout": 60,
            "resources": {"GPU": 1},
        },
    }
    assert "resources" not in make_worker_spec(0, 1, 2**29, "127.0.0.1", "tls://", "/c", None)["opts"]


def test_option_schema_offers_only_what_the_user_may_choose():
    assert make_option_schema(cms_template()) == {
        "type": "object",
        "title": "CMS analysis",
        "description": "Workers with the CMS software",
        "properties": {
            "workers": {
                "type": "integer",
                "title": "Workers",
                "description": "1 to 10 workers",
                "minimum": 1,
                "maximum": 10,
                "default": 2,
            },
            "adaptive": {
                "type": "boolean",
                "title": "Adaptive",
                "default": False,
                "description": "Let Dask add and remove workers with the load, between the minimum and maximum below.",
            },
            "adapt_minimum": {
                "type": "integer",
                "title": "Adaptive minimum",
                "description": "1 to 10 workers",
                "minimum": 1,
                "maximum": 10,
                "default": 1,
            },
            "adapt_maximum": {
                "type": "integer",
                "title": "Adaptive maximum",
                "description": "1 to 10 workers",
                "minimum": 1,
                "maximum": 10,
                "default": 10,
            },
            "cores": {
                "type": "integer",
                "title": "Cores per worker",
                "description": "1 to 4 cores",
                "minimum": 1,
                "maximum": 4,
                "default": 2,
            },
            "memory": {
                "type": "number",
                "title": "Memory per worker",
                "description": "1 to 16 GiB",
                "minimum": 1.0,
                "maximum": 16.0,
                "default": 4.0,
            },
            "idle_timeout": {
                "type": "number",
                "title": "Idle timeout",
                "description": "0 to 1440 minutes (0: never)",
                "minimum": 0.0,
                "maximum": 1440.0,
                "default": 60.0,
            },
            "environment": {
                "type": "string",
                "title": "Environment",
                "default": "lcg-105",
                "description": "Software the workers run; pick the one of your notebook's kernel.",
                "oneOf": [{"const": "lcg-105", "title": "LCG 105"}, {"const": "lcg-106", "title": "LCG 106"}],
            },
        },
        "additionalProperties": False,
    }


def test_backend_bounds_narrow_the_template():
    schema = make_option_schema(cms_template(), {"cores": Bounds(1, 1, 2), "memory": Bounds(8, 8, 32)})
    assert schema["properties"]["cores"]["maximum"] == 2
    assert (schema["properties"]["memory"]["minimum"], schema["properties"]["memory"]["default"]) == (8.0, 8.0)


def test_valid_options_become_numbers_and_admin_choices():
    options = validate_options(cms_template(), {"workers": 3, "memory": 2.5, "environment": "lcg-106"})
    assert options == ClusterOptions(
        workers=3,
        cores=2,
        memory=2.5,
        gpus=0,
        idle_timeout=60.0,
        adaptive=False,
        adapt_minimum=1,
        adapt_maximum=10,
        environment=Environment("lcg-106", "LCG 106", "registry.cern.ch/lcg:106"),
    )
    assert options.memory_bytes == int(2.5 * GIB)
    assert validate_options(cms_template(), {"adaptive": True, "adapt_maximum": 6}).max_workers == 6


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"workers": 11}, "workers", "workers: 11 is out of bounds; choose 1 to 10 workers"),
        ({"workers": "3"}, "workers", "workers: '3' is not a whole number; choose 1 to 10 workers"),
        ({"workers": 2.5}, "workers", "workers: 2.5 is not a whole number; choose 1 to 10 workers"),
        # Present but blank: never the template's default (the panel's form refuses these itself).
        ({"workers": ""}, "workers", "workers: '' is not a whole number; choose 1 to 10 workers"),
        ({"workers": None}, "workers", "workers: None is not a whole number; choose 1 to 10 workers"),
        ({"memory": 0.5}, "memory", "memory: 0.5 is out of bounds; choose 1 to 16 GiB"),
        (
            {"gpus": 1},
            "gpus",
            "gpus: not an option of template 'cms' (fixed by the admin or unknown); options: workers, "
            "adaptive, adapt_minimum, adapt_maximum, cores, memory, idle_timeout, environment",
        ),
        (
            {"environment": "lcg-105\n+Requirements = True"},
            "environment",
            "environment: 'lcg-105\\n+Requirements = True' is not allowed; choose one of: lcg-105, lcg-106",
        ),
        ({"adaptive": "yes"}, "adaptive", "adaptive: 'yes' must be true or false"),
        (
            {"adaptive": True, "adapt_minimum": 5, "adapt_maximum": 3},
            "adapt_minimum",
            "adapt_minimum: 5 is above adapt_maximum 3; the adaptive minimum must not exceed the maximum",
        ),
        ([1, 2], "options", 'options: must be an object such as {"workers": 2}, got [1, 2]'),
    ],
)
def test_bad_options_are_refused_naming_field_value_and_bounds(options, field, message):
    with pytest.raises(OptionError) as error:
        validate_options(cms_template(), options)
    assert (error.value.status_code, error.value.details["field"], error.value.message) == (400, field, message)


def test_scaling_requests():
    template = cms_template()
    assert validate_scaling(template, {"workers": 4}) == {"workers": 4}
    assert validate_scaling(template, {"adapt": {"minimum": 1, "maximum": 8}}) == {"adapt": (1, 8)}
    for body, message in [
        ({"workers": 0}, "workers: 0 is out of bounds; choose 1 to 10 workers"),
        ({"workers": True}, "workers: True is not a whole number of workers"),
        ({"adapt": {"minimum": 3}}, 'adapt: {\'minimum\': 3} must be {"minimum": a, "maximum": b}; send '),
        ({"adapt": {"minimum": 5, "maximum": 2}}, "adapt.minimum: 5 is above adapt.maximum 2"),
        ({"workers": 1, "adapt": {}}, "body: {'adapt': {}, 'workers': 1} is not a scaling request; send "),
    ]:
        with pytest.raises(OptionError) as error:
            validate_scaling(template, body)
        assert error.value.message.startswith(message)


def test_limits_take_the_users_entry_else_the_most_generous_group():
    config = {
        "default": {"clusters": 1, "workers": 4, "cores": 8},
        "groups": {"cms": {"clusters": 3, "workers": 100}, "atlas": {"clusters": 2, "workers": 200, "cores": 16}},
        "users": {"carol": {"workers": 1}},
    }
    assert resolve_limits(config, "alice", []) == Limits(1, 4, 8, None, "default")
    assert resolve_limits(config, "bob", ["cms", "atlas"]) == Limits(3, 200, None, None, "group atlas, group cms")
    assert resolve_limits(config, "carol", ["cms"]) == Limits(None, 1, None, None, "user carol")
    assert resolve_limits({}, "dave", []) == Limits(None, None, None, None, "default")


def test_limits_refuse_what_would_exceed_them():
    limits = Limits(clusters=2, workers=10, cores=None, source="group cms")
    check_limits(limits, Usage(1, 5, 10), Usage(1, 5, 500), "this cluster")
    with pytest.raises(LimitError) as error:
        check_limits(limits, Usage(1, 8, 8), Usage(1, 4, 4), "this cluster")
    assert error.value.status_code == 403
    assert error.value.message == (
        "workers: this cluster would use 12 workers in all, above your limit of 10 workers "
        "(group cms); you use 8 workers now. Shut down or scale down a cluster first."
    )
    # Shrinking never fails, even above a limit lowered meanwhile.
    check_limits(limits, Usage(3, 50, 50), Usage(0, 0, 0), "this scaling")


def test_local_clusters_together_fit_the_server_unless_the_admin_says_otherwise():
    # A 2-CPU, 4 GiB server: three 2-worker clusters of 2 GiB workers do not fit.
    server = make_local_limits({}, cpus=2.0, memory_bytes=4 * GIB)
    assert server == Limits(cores=2, memory=4.0, source="this server's CPUs and memory")
    one = Usage.of_cluster(workers=2, cores=1, memory=1)
    check_limits(server, Usage(), one, "this cluster")
    with pytest.raises(LimitError) as error:
        check_limits(server, one, Usage.of_cluster(workers=2, cores=1, memory=2), "this cluster")
    assert error.value.message == (
        "cores: this cluster would use 4 cores in all, above your limit of 2 cores (this server's CPUs and "
        "memory); you use 2 cores now. Shut down or scale down a cluster first."
    )
    with pytest.raises(LimitError) as error:
        check_limits(server, Usage.of_cluster(1, 1, 3.5), Usage.of_cluster(1, 0, 1), "this scaling")
    assert error.value.message.startswith(
        "memory: this scaling would use 4.5 GiB of memory in all, above your limit of 4 GiB of memory"
    )
    assert make_local_limits({"local": {"memory": 64}}, cpus=2.0, memory_bytes=4 * GIB) == Limits(
        memory=64, source="local clusters"
    )


def test_connect_code_is_exact():
    tls = TlsFiles("/home/alice/.local/share/jupyter/sciencelab/dask-clusters/0a1b/cert.pem", "/h/key.pem")
    assert make_connect_code(tls_client_recipe("tls://127.0.0.1:8786", tls)) == (
        "from dask.distributed import Client, Security\n"
        "security = Security(tls_ca_file='/home/alice/.local/share/jupyter/sciencelab/dask-clusters/0a1b/cert.pem', "
        "tls_client_cert='/home/alice/.local/share/jupyter/sciencelab/dask-clusters/0a1b/cert.pem', "
        "tls_client_key='/h/key.pem', require_encryption=True)\n"
        "client = Client('tls://127.0.0.1:8786', security=security)\n"
        "client\n"
    )
    gateway = ConnectRecipe(
        "dask_gateway",
        "Gateway",
        (
            Call(
                "gateway",
                "Gateway",
                ("http://127.0.0.1:8000",),
                (("proxy_address", "gateway://127.0.0.1:8001"), ("auth", "jupyterhub")),
            ),
            Call("cluster", "gateway.connect", ("clusters.abc",)),
            Call("client", "cluster.get_client"),
        ),
    )
    assert make_connect_code(gateway) == (
        "from dask_gateway import Gateway\n"
        "gateway = Gateway('http://127.0.0.1:8000', proxy_address='gateway://127.0.0.1:8001', auth='jupyterhub')\n"
        "cluster = gateway.connect('clusters.abc')\n"
        "client = cluster.get_client()\n"
        "client\n"
    )


def test_connect_code_keeps_hostile_values_inside_their_string():
    hostile = "tls://x:1')\nimport os; os.system('touch /tmp/owned') #\"\\"
    tree = ast.parse(make_connect_code(tls_client_recipe(hostile, TlsFiles(hostile, hostile))))
    assert [type(node).__name__ for node in tree.body] == ["ImportFrom", "Assign", "Assign", "Expr"]
    assert tree.body[2].value.args[0].value == hostile
    assert {keyword.value.value for keyword in tree.body[1].value.keywords} == {hostile, True}


def test_workers_from_identity_reads_memory_cpu_and_gpu_metrics():
    identity = {
        "workers": {
            "tcp://127.0.0.1:2": {
                "name": "b",
                "nthreads": 2,
                "memory_limit": 4 * GIB,
                "metrics": {"memory": 100, "cpu": 50.0, "gpu": {"utilization": 87, "memory-used": 3 * GIB}},
                "gpu": {"memory-total": 16 * GIB, "name": "NVIDIA H100"},
            },
            "tcp://127.0.0.1:1": {
                "name": "a",
                "nthreads": 1,
                "memory_limit": GIB,
                "metrics": {"memory": 10, "cpu": 1.5},
            },
        }
    }
    assert workers_from_identity(identity) == [
        WorkerInfo(
            name="a", state="connected", address="tcp://127.0.0.1:1", threads=1, memory=10, memory_limit=GIB, cpu=1.5
        ),
        WorkerInfo(
            name="b",
            state="connected",
            address="tcp://127.0.0.1:2",
            threads=2,
            memory=100,
            memory_limit=4 * GIB,
            cpu=50.0,
            gpu_utilization=87,
            gpu_memory_used=3 * GIB,
            gpu_memory_total=16 * GIB,
        ),
    ]


def test_cluster_json_counts_workers_by_state():
    record = ClusterRecord(
        id="c1",
        owner="alice",
        name="cms-1",
        template="cms",
        backend="gateway",
        options={"workers": 3, "cores": 2},
        created=1.0,
        server={"pid": 1, "started": 0.0},
        requested=3,
    )
    view = ClusterView(
        status="running",
        scheduler_address="gateway://g:8001/c1",
        dashboard_url="http://g/status",
        connect_code="code",
        updated=2.0,
        workers=(
            WorkerInfo(name="a", state="connected", address="tcp://n:1", threads=2, memory=5, memory_limit=GIB),
            WorkerInfo(name="b", state="queued", reason="Idle", job_id="12.0"),
            WorkerInfo(name="c", state="held", reason="Job exceeded memory", job_id="13.0"),
        ),
    )
    result = make_cluster_json(record, view)
    assert {key: result[key] for key in ("workers", "worker_states", "cores", "memory", "adapt", "managed")} == {
        "workers": {"requested": 3, "pending": 2, "running": 1},
        "worker_states": {"queued": 1, "held": 1, "connected": 1},
        "cores": 2,
        "memory": GIB,
        "adapt": None,
        "managed": True,
    }
    assert result["worker_list"][2] == {
        "name": "c",
        "state": "held",
        "address": None,
        "reason": "Job exceeded memory",
        "detail": None,
        "log": None,
        "job_id": "13.0",
        "threads": None,
        "memory": None,
        "memory_limit": None,
        "cpu": None,
        "gpu_utilization": None,
        "gpu_memory_used": None,
        "gpu_memory_total": None,
    }
    record.adapt = (0, 10)
    assert make_cluster_json(record, view)["workers"] == {"requested": 3, "pending": 2, "running": 1}
    assert ClusterRecord.from_json(record.to_json()) == record


def test_configuration_merges_dask_files_hub_file_variables_and_traitlets(tmp_path):
    etc = tmp_path / "etc-dask"
    etc.mkdir()
    (etc / "sciencelab.yaml").write_text(
        "sciencelab:\n  clusters:\n    templates:\n"
        "      small: {backend: local, options: {workers: {default: 1, maximum: 2}}}\n"
        "      big: {backend: local, title: Big}\n"
        "    limits: {default: {clusters: 1}}\n"
    )
    hub_file = tmp_path / "profile-dask.yaml"
    hub_file.write_text("sciencelab:\n  clusters:\n    templates:\n      big: {title: Big from the hub}\n")
    environ = {
        "SCIENCELAB_DASK_CONFIG_FILE": str(hub_file),
        "DASK_SCIENCELAB__CLUSTERS__TEMPLATES__SMALL__OPTIONS__WORKERS__MAXIMUM": "3",
    }
    manager = ClusterManager(
        config_paths=[str(etc)], environ=environ, templates={"big": {"options": {"cores": {"maximum": 2}}}}
    )
    templates = manager.cluster_templates
    assert list(templates) == ["small", "big"]
    assert templates["small"].workers == Bounds(1, 0, 3)
    assert (templates["big"].title, templates["big"].cores) == ("Big from the hub", Bounds(1, 1, 2))
    assert templates["big"].origin == f"{etc / 'sciencelab.yaml'} + {hub_file} + c.ClusterManager.templates"
    assert manager.limit_config == {"default": {"clusters": 1}}


def test_broken_template_in_a_file_stops_the_manager_naming_the_file(tmp_path):
    (tmp_path / "broken.yaml").write_text(
        "sciencelab:\n  clusters:\n    templates:\n      cms: {backend: local, options: {memory: {maximum: -1}}}\n"
    )
    with pytest.raises(TemplateError) as error:
        ClusterManager(config_paths=[str(tmp_path)], environ={})
    assert str(error.value) == (
        f"{tmp_path / 'broken.yaml'}: template 'cms': options.memory.maximum: -1 is less than the minimum of 0"
    )
    (tmp_path / "broken.yaml").write_text("sciencelab:\n  clusters:\n    templates: [local]\n")
    with pytest.raises(
        TemplateError,
        match=r"^sciencelab.clusters.templates must map template names to templates, "
        r"got list: \['local'\]$",
    ):
        ClusterManager(config_paths=[str(tmp_path)], environ={})
    with pytest.raises(TemplateError, match=re.escape("SCIENCELAB_DASK_CONFIG_FILE=/nonexistent.yaml: no such file")):
        ClusterManager(config_paths=[], environ={"SCIENCELAB_DASK_CONFIG_FILE": "/nonexistent.yaml"})


def test_main_script_modules_are_what_a_worker_would_import_again():
    script = (
        "#!/usr/bin/python\nimport sys\nfrom jupyter_server.serverapp import main\nfrom . import nothing\n"
        "if __name__ == '__main__':\n    import os\n    sys.exit(main())\n"
    )
    assert main_script_modules(script) == ["jupyter_server.serverapp", "sys"]
