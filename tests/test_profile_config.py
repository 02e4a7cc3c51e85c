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
            "runs_on, slurm, dask_config, environment, node_selector, tolerations",
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


@pytest.mark.parametrize(("value", "expected"), [(512, 512), ("2G", 2 * GIB), ("1.5M", 1536 * 1024), ("100", 100)])
def test_memory_sizes_read_as_jupyterhub_does(value, expected):
    assert parse_memory(value) == expected
