"""The admin's profile configuration: the schema, the catalogs, and errors that name file, profile and field."""

from types import MappingProxyType

import pytest

from sciencelab_spawner.profile_config import (
    Choice,
    CollaborativeOption,
    CountOption,
    CvmfsRepository,
    GpuModel,
    GroupQuota,
    Image,
    MultiOption,
    Offload,
    Profile,
    ProfileConfigError,
    S3Bucket,
    SingleOption,
    Size,
    load_profiles_yaml,
    make_profile_config,
    parse_memory,
)

from .profile_examples import example_config

GIB = 1024**3


def test_example_file_catalogs():
    config = example_config()
    assert config.images["root"] == Image("root", "ROOT 6.32 and coffea", "ghcr.io/sciencelab/user-root:2026.11")
    assert config.sizes["medium"] == Size("medium", "2 CPUs, 4 GB", 1.0, 2.0, 2 * GIB, 4 * GIB)
    assert config.gpu_models["a100"] == GpuModel("a100", "NVIDIA A100 80 GB", "NVIDIA-A100-SXM4-80GB")
    assert config.gpu_models["a100-1g.10gb"] == GpuModel(
        "a100-1g.10gb", "A100 slice (MIG 1g.10gb)", None, "nvidia.com/mig-1g.10gb"
    )
    assert config.gpu_models["a100-1g.10gb"].mig_profile == "1g.10gb"
    assert config.gpu_models["a100"].mig_profile is None
    assert config.cvmfs_repositories["sft.cern.ch"] == CvmfsRepository("sft.cern.ch", "LCG views (sft.cern.ch)")
    assert config.cvmfs_repositories["sft.cern.ch"].mount_path == "/cvmfs/sft.cern.ch"
    assert config.s3_buckets["cms-opendata"] == S3Bucket(
        "cms-opendata", "CMS open data (read-only)", "https://s3.cern.ch", "cms-opendata", True
    )
    assert config.quotas.max_gpus_per_user == 1
    assert config.quotas.groups == {"gpu-users": GroupQuota(max_gpus_per_user=2, max_gpus=8)}
    assert config.source == "profiles.yaml"


def test_example_file_profiles():
    cpu, a100, mig, collab = example_config().profiles
    assert cpu == Profile(
        slug="cpu",
        display_name="CPU analysis",
        description="Notebooks, plotting and histogramming with uproot, awkward and coffea.",
        default=True,
        image=SingleOption((Choice("python"), Choice("root")), "python"),
        size=SingleOption((Choice("small"), Choice("medium"), Choice("large", frozenset({"gpu-users"}))), "small"),
        cvmfs=MultiOption(
            (Choice("cms.cern.ch"), Choice("atlas.cern.ch"), Choice("sft.cern.ch")), ("sft.cern.ch",), offered=True
        ),
        s3=MultiOption((Choice("cms-opendata"), Choice("scratch")), (), offered=True),
    )
    assert a100 == Profile(
        slug="a100",
        display_name="NVIDIA A100 (1 or 2 GPUs)",
        description="Training and inference on whole A100 GPUs.",
        allowed_groups=frozenset({"gpu-users"}),
        image=SingleOption((Choice("root"),), "root"),
        size=SingleOption((Choice("large"),), "large"),
        gpu_model=SingleOption((Choice("a100"),), "a100"),
        gpu_count=CountOption(1, 2, 1),
        cvmfs=MultiOption((Choice("sft.cern.ch"),), ("sft.cern.ch",), offered=False),
        tolerations=(MappingProxyType({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}),),
    )
    assert (mig.gpu_model, mig.gpu_count) == (
        SingleOption((Choice("a100-1g.10gb"),), "a100-1g.10gb"),
        CountOption(1, 1, 1),
    )
    assert collab.collaborative == CollaborativeOption(
        SingleOption((Choice(False), Choice(True)), True), image="collaborative", use_gpu=False
    )
    assert collab.environment == {"SCIENCELAB_SITE": "example"}
    assert collab.node_selector == {"sciencelab.io/pool": "interactive"}


def test_profiles_setting_may_be_just_the_list_with_inline_sizes():
    config = make_profile_config(
        [{"slug": "small", "display_name": "Small", "size": {"cpu_limit": 1, "mem_limit": "2G"}}], "setting"
    )
    (small,) = config.profiles
    assert small.size == SingleOption((Choice("inline/small"),), "inline/small")
    assert config.sizes["inline/small"] == Size("inline/small", "inline/small", None, 1.0, None, 2 * GIB)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("profiles: []", "p.yaml: profiles: needs at least 1 entry, got 0"),
        ("{}", "p.yaml: the top level: missing required field 'profiles'"),
        ("foo: [", "p.yaml: not valid YAML at line 1, column 7: expected the node content, but found '<stream end>'"),
        ("profiles: [{slug: a}]", "p.yaml: profile 'a' (profiles[0]): missing required field 'display_name'"),
        (
            "profiles: [{slug: Big One, display_name: x}]",
            "p.yaml: profile 'Big One' (profiles[0]), slug: 'Big One' is not valid: Lowercase letters, digits and '-', "
            '1-63 characters; what the REST API sends as `{"profile": "<slug>"}`.',
        ),
        (
            "profiles: [{slug: a, display_name: x, imag: python}]",
            "p.yaml: profile 'a' (profiles[0]): unknown field 'imag'; known fields: slug, display_name, description, "
            "default, allowed_groups, image, size, gpu, cvmfs, s3, collaborative, lifetime, idle_timeout, extend, "
            "runs_on, slurm, dask_config, environment, node_selector, tolerations, offload",
        ),
        (
            "profiles: [{slug: a, display_name: x, gpu: {model: a100, count: {max: two}}}]",
            "p.yaml: profile 'a' (profiles[0]), gpu.count.max: expected a whole number, got 'two'",
        ),
        (
            "profiles: [{slug: a, display_name: x, size: {cpu_limit: 1, mem_limit: 2 GB}}]",
            "p.yaml: profile 'a' (profiles[0]), size.mem_limit: '2 GB' is not valid: Bytes: a whole number, or a number "
            "with a K, M, G or T suffix such as `4G`.",
        ),
        (
            "sizes: {s: {cpu_limit: 0}}\nprofiles: [{slug: a, display_name: x}]",
            "p.yaml: sizes.s.cpu_limit: must be > 0, got 0",
        ),
        (
            "profiles: [{slug: a, display_name: x, image: nope}]",
            "p.yaml: profile 'a' (profiles[0]), image: 'nope' is not in images; declared: (none declared)",
        ),
        (
            "images: {py: {image: x}}\nprofiles: [{slug: a, display_name: x, image: {choices: [py], default: root}}]",
            "p.yaml: profile 'a' (profiles[0]), image.default: 'root' is not among the choices: py",
        ),
        (
            "images: {py: {image: x}}\nprofiles: [{slug: a, display_name: x, image: {choices: [py, py]}}]",
            "p.yaml: profile 'a' (profiles[0]), image.choices: 'py' is listed twice",
        ),
        (
            "cvmfs_repositories: {sft.cern.ch: {}}\nprofiles: [{slug: a, display_name: x, "
            "cvmfs: {choices: [sft.cern.ch], default: [cms.cern.ch]}}]",
            "p.yaml: profile 'a' (profiles[0]), cvmfs.default: 'cms.cern.ch' is not among the choices: sft.cern.ch",
        ),
        (
            "gpu_models: {a: {}}\nprofiles: [{slug: a, display_name: x, gpu: {model: a, count: {min: 2, max: 1}}}]",
            "p.yaml: profile 'a' (profiles[0]), gpu.count: needs min <= default <= max, got min 2, default 2, max 1",
        ),
        (
            "sizes: {s: {mem_guarantee: 4G, mem_limit: 2G}}\nprofiles: [{slug: a, display_name: x}]",
            "p.yaml: sizes.s: mem_guarantee '4G' is above mem_limit '2G'",
        ),
        (
            "gpu_models: {mig: {resource: nvidia.com/mig-huge}}\nprofiles: [{slug: a, display_name: x}]",
            "p.yaml: gpu_models.mig.resource: 'nvidia.com/mig-huge' is not valid: Extended resource to request. Default: "
            "`nvidia.com/gpu`; MIG: `nvidia.com/mig-1g.10gb`.",
        ),
        (
            "profiles: [{slug: a, display_name: x, collaborative: {choices: [true], image: collab}}]",
            "p.yaml: profile 'a' (profiles[0]), collaborative.image: 'collab' is not in images; declared: (none declared)",
        ),
        (
            "profiles: [{slug: a, display_name: A}, {slug: a, display_name: B}]",
            "p.yaml: profiles: duplicate slug(s): a",
        ),
        (
            "profiles: [{slug: a, display_name: A, default: true}, {slug: b, display_name: B, default: true}]",
            "p.yaml: profiles: at most one profile may be the default, got: a, b",
        ),
        (
            "profiles: [{slug: a, display_name: x, environment: {1BAD: x}}]",
            "p.yaml: profile 'a' (profiles[0]), environment: '1BAD' is not valid: must match ^[A-Za-z_][A-Za-z0-9_]*$",
        ),
    ],
)
def test_errors_name_source_profile_and_field(text, message):
    with pytest.raises(ProfileConfigError) as error:
        load_profiles_yaml(text, "p.yaml")
    assert str(error.value) == message


OFFLOAD = "offload: {node: interlink-slurm, resources: {cpu: 8, memory: 32G}}"


def test_an_offloaded_profile_gets_the_virtual_node_and_a_fixed_size():
    config = load_profiles_yaml(
        """
        profiles:
          - slug: hpc
            display_name: On the HPC cluster
            offload:
              node: interlink-slurm
              tolerations: [{key: site.example.org/hpc, operator: Exists, effect: NoSchedule}]
              resources: {cpu: 8, memory: 32G, gpus: 1}
              job_flags: [--partition=gpu, --account=phys123, --gres=gpu:1]
          - slug: any-virtual-node
            display_name: Any interLink node
            offload:
              node: {virtual-node.interlink/type: virtual-kubelet}
              resources: {cpu: 1, memory: 2G}
        """,
        "p.yaml",
    )
    hpc, anywhere = config.profiles
    assert hpc.offload == Offload(
        node_selector={"kubernetes.io/hostname": "interlink-slurm"},
        tolerations=({"key": "site.example.org/hpc", "operator": "Exists", "effect": "NoSchedule"},),
        gpus=1,
        job_flags=("--partition=gpu", "--account=phys123", "--gres=gpu:1"),
    )
    # CPU and memory are the profile's fixed size, requests equal to limits.
    assert hpc.size == SingleOption((Choice("inline/hpc"),), "inline/hpc")
    assert config.sizes["inline/hpc"] == Size(
        "inline/hpc", "8 CPUs, 32G memory, 1 GPU on the HPC cluster", 8.0, 8.0, 32 * GIB, 32 * GIB
    )
    assert anywhere.offload == Offload(node_selector={"virtual-node.interlink/type": "virtual-kubelet"})
    assert config.sizes["inline/any-virtual-node"].display_name == "1 CPU, 2G memory on the HPC cluster"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "cvmfs_repositories: {sft.cern.ch: {}}\n"
            f"profiles: [{{slug: hpc, display_name: x, cvmfs: [sft.cern.ch], {OFFLOAD}}}]",
            "p.yaml: profile 'hpc' (profiles[0]), cvmfs: an offloaded profile (with `offload`) cannot have it: "
            "interLink's SLURM plugin mounts only Secret, ConfigMap, emptyDir and projected volumes, not the "
            "cvmfs-csi claim or the cluster nodes' /cvmfs",
        ),
        (
            "s3_buckets: {b: {endpoint: 'https://s3.cern.ch', bucket: bucket-b}}\n"
            f"profiles: [{{slug: hpc, display_name: x, s3: {{choices: [b]}}, {OFFLOAD}}}]",
            "p.yaml: profile 'hpc' (profiles[0]), s3: an offloaded profile (with `offload`) cannot have it: "
            "interLink's SLURM plugin mounts only Secret, ConfigMap, emptyDir and projected volumes, not the "
            "buckets' CSI volumes",
        ),
        (
            f"gpu_models: {{a100: {{}}}}\nprofiles: [{{slug: hpc, display_name: x, gpu: {{model: a100}}, {OFFLOAD}}}]",
            "p.yaml: profile 'hpc' (profiles[0]), gpu: an offloaded profile (with `offload`) cannot have it: the "
            "hub's GPU models are the cluster's GPU nodes; ask for HPC GPUs with `offload.resources.gpus`",
        ),
        (
            f"profiles: [{{slug: hpc, display_name: x, size: {{cpu_limit: 2}}, {OFFLOAD}}}]",
            "p.yaml: profile 'hpc' (profiles[0]), size: an offloaded profile (with `offload`) cannot have it: its "
            "CPU and memory are `offload.resources`",
        ),
        (
            f"profiles: [{{slug: hpc, display_name: x, collaborative: true, {OFFLOAD}}}]",
            "p.yaml: profile 'hpc' (profiles[0]), collaborative: an offloaded profile (with `offload`) cannot have "
            "it: the collaboration switch changes the server's image and drops its GPUs, which the batch job's "
            "`offload.job_flags` fix",
        ),
        (
            f"profiles: [{{slug: hpc, display_name: x, node_selector: {{pool: hpc}}, {OFFLOAD}}}]",
            "p.yaml: profile 'hpc' (profiles[0]), node_selector: an offloaded profile (with `offload`) cannot have "
            "it: the pod goes to the virtual node `offload.node` selects; put more labels there",
        ),
        (
            "profiles: [{slug: hpc, display_name: x, offload: {node: vk, resources: {cpu: 1, memory: 1G}, "
            "job_flags: [--partition=cpu, --mem=64G]}}]",
            "p.yaml: profile 'hpc' (profiles[0]), offload.job_flags[1]: '--mem=64G': the SLURM plugin sets --mem "
            "from the pod's limits; set offload.resources.memory instead",
        ),
        (
            "profiles: [{slug: hpc, display_name: x, offload: {node: vk, resources: {cpu: 1, memory: 1G}, "
            "job_flags: ['--partition=cpu; rm -rf ~']}}]",
            "p.yaml: profile 'hpc' (profiles[0]), offload.job_flags[0]: '--partition=cpu; rm -rf ~' is not valid: "
            "One `sbatch` option, `--name` or `--name=value`: no spaces, quotes or shell characters.",
        ),
        (
            "profiles: [{slug: hpc, display_name: x, offload: {node: vk, resources: {cpu: 1, memory: 1G}, "
            "job_flags: ['-p gpu']}}]",
            "p.yaml: profile 'hpc' (profiles[0]), offload.job_flags[0]: '-p gpu' is not valid: "
            "One `sbatch` option, `--name` or `--name=value`: no spaces, quotes or shell characters.",
        ),
        (
            "profiles: [{slug: hpc, display_name: x, offload: {node: vk, resources: {cpu: 0.5, memory: 1G}}}]",
            "p.yaml: profile 'hpc' (profiles[0]), offload.resources.cpu: expected a whole number, got 0.5 (Whole "
            "CPU cores (the plugin rounds a fraction up), e.g. `8`.)",
        ),
        (
            "profiles: [{slug: hpc, display_name: x, offload: {node: vk, resources: {cpu: 1}}}]",
            "p.yaml: profile 'hpc' (profiles[0]), offload.resources: missing required field 'memory'",
        ),
        (
            "profiles: [{slug: hpc, display_name: x, offload: {node: Bad_Node, resources: {cpu: 1, memory: 1G}}}]",
            "p.yaml: profile 'hpc' (profiles[0]), offload.node: 'Bad_Node' is not valid: A Kubernetes node name: "
            "lowercase letters, digits, '-' and '.', e.g. `interlink-slurm`.",
        ),
        (
            "profiles: [{slug: hpc, display_name: x, offload: {node: {}, resources: {cpu: 1, memory: 1G}}}]",
            "p.yaml: profile 'hpc' (profiles[0]), offload.node: must not be empty",
        ),
        (
            "profiles: [{slug: hpc, display_name: x, offload: {node: vk, resources: {cpu: 1, memory: 1G}, "
            "tolerations: [{key: 'a b', operator: Exists}]}}]",
            "p.yaml: profile 'hpc' (profiles[0]), offload.tolerations[0].key: 'a b' is not valid: A Kubernetes label "
            "key, e.g. `virtual-node.interlink/type` or `site`.",
        ),
        (
            "profiles: [{slug: hpc, display_name: x, runs_on: slurm, lifetime: 1h, "
            "offload: {node: vk, resources: {cpu: 1, memory: 1G}}}]",
            "p.yaml: profile 'hpc' (profiles[0]), runs_on: 'slurm': `offload` sends a Kubernetes pod to a virtual "
            "node; only a Kubernetes profile has one",
        ),
    ],
)
def test_offload_refuses_what_the_hpc_side_cannot_do(text, message):
    with pytest.raises(ProfileConfigError) as error:
        load_profiles_yaml(text, "p.yaml")
    assert str(error.value) == message


@pytest.mark.parametrize(("value", "expected"), [(512, 512), ("2G", 2 * GIB), ("1.5M", 1536 * 1024), ("100", 100)])
def test_memory_sizes_read_as_jupyterhub_does(value, expected):
    assert parse_memory(value) == expected
