"""The spawn form: exact HTML from the schema, every admin string escaped, and reading it back."""

import pytest

from sciencelab_spawner.profile_config import make_profile_config
from sciencelab_spawner.profile_record import NotApplied
from sciencelab_spawner.spawn_form import FORM_SCRIPT, FORM_STYLE, make_options_form, options_from_form
from sciencelab_spawner.user_options import UserOptionsError

CONFIG = make_profile_config(
    {
        "images": {"py": {"image": "x", "display_name": "Py <3"}, "root": {"image": "y"}},
        "gpu_models": {"a100": {"display_name": "A100 & co"}},
        "cvmfs_repositories": {"sft.cern.ch": {}, "cms.cern.ch": {}},
        "profiles": [
            {
                "slug": "cpu",
                "display_name": "CPU <b>",
                "description": "Desc & more",
                "image": {"choices": ["py", "root"]},
                "cvmfs": {"choices": ["sft.cern.ch", "cms.cern.ch"]},
                "collaborative": {"choices": [False, True]},
            },
            {"slug": "gpu", "display_name": "GPU", "image": "py", "gpu": {"model": "a100", "count": {"max": 2}}},
            {"slug": "secret", "display_name": "Secret", "allowed_groups": ["gpu-users"]},
        ],
    },
    "test",
)


def test_form_html_is_exact_and_escaped():
    form = make_options_form(CONFIG, frozenset(), {"profile": "gpu", "gpu_count": 2}, {"a100": (1, 4)})
    assert form == (
        FORM_STYLE + '<fieldset class="sciencelab-profiles"><legend>Profile</legend>'
        '<div class="card mb-3 sciencelab-profile" data-profile="cpu"><div class="card-body">'
        '<div class="form-check"><input class="form-check-input" type="radio" name="profile" id="profile-cpu" value="cpu">'
        '<label class="form-check-label" for="profile-cpu"><strong>CPU &lt;b&gt;</strong></label></div>'
        '<p class="card-text text-muted mb-1 ms-4">Desc &amp; more</p><div class="sciencelab-options">'
        '<div class="mb-2"><label class="form-label" for="cpu-image">Image</label>'
        '<select class="form-select" name="cpu.image" id="cpu-image"><option value="py" selected>Py &lt;3</option>'
        '<option value="root">root</option></select></div>'
        '<fieldset class="mb-2"><legend class="form-label fs-6">CVMFS repositories</legend>'
        '<div class="form-check"><input class="form-check-input" type="checkbox" name="cpu.cvmfs" id="cpu-cvmfs-0" '
        'value="sft.cern.ch"><label class="form-check-label" for="cpu-cvmfs-0">sft.cern.ch</label></div>'
        '<div class="form-check"><input class="form-check-input" type="checkbox" name="cpu.cvmfs" id="cpu-cvmfs-1" '
        'value="cms.cern.ch"><label class="form-check-label" for="cpu-cvmfs-1">cms.cern.ch</label></div></fieldset>'
        '<div class="form-check form-switch mb-2"><input class="form-check-input" type="checkbox" role="switch" '
        'name="cpu.collaborative" id="cpu-collaborative" value="on">'
        '<label class="form-check-label" for="cpu-collaborative">Real-time collaboration</label></div></div></div></div>'
        '<div class="card mb-3 sciencelab-profile" data-profile="gpu"><div class="card-body">'
        '<div class="form-check"><input class="form-check-input" type="radio" name="profile" id="profile-gpu" '
        'value="gpu" checked="checked"><label class="form-check-label" for="profile-gpu"><strong>GPU</strong></label>'
        '</div><ul class="sciencelab-resources small"><li><span class="text-muted">Image:</span> Py &lt;3</li>'
        '<li><span class="text-muted">GPU:</span> A100 &amp; co</li></ul>'
        '<p class="sciencelab-gpu-free small text-muted mb-1">1 of 4 A100 &amp; co free</p>'
        '<div class="sciencelab-options"><div class="mb-2"><label class="form-label" for="gpu-gpu_count">GPUs</label>'
        '<input class="form-control" type="number" name="gpu.gpu_count" id="gpu-gpu_count" min="1" max="2" step="1" '
        'value="2"></div></div></div></div></fieldset>' + FORM_SCRIPT
    )


def test_form_preselects_remembered_choices_still_offered():
    form = make_options_form(
        CONFIG, frozenset(), {"profile": "cpu", "image": "root", "cvmfs": ["cms.cern.ch"], "collaborative": True}, {}
    )
    assert 'id="profile-cpu" value="cpu" checked="checked"' in form
    assert '<option value="root" selected>' in form
    assert 'id="cpu-cvmfs-1" value="cms.cern.ch" checked="checked"' in form
    assert 'name="cpu.collaborative" id="cpu-collaborative" value="on" checked="checked"' in form


def test_form_ignores_remembered_choices_no_longer_offered():
    form = make_options_form(CONFIG, frozenset(), {"profile": "secret"}, {})
    assert 'value="cpu" checked="checked"' in form
    assert "Secret" not in form
    assert "Secret" in make_options_form(CONFIG, frozenset({"gpu-users"}), {}, {})


def test_a_gpu_profile_this_hub_cannot_place_is_disabled_with_the_reason():
    form = make_options_form(
        CONFIG, frozenset(), {"profile": "gpu"}, {}, gpu_problem="no GPU on this machine (NVML: Driver Not Loaded)"
    )
    assert (
        '<div class="card mb-3 sciencelab-profile" data-profile="gpu"><div class="card-body">'
        '<div class="form-check"><input class="form-check-input" type="radio" name="profile" id="profile-gpu" '
        'value="gpu" disabled><label class="form-check-label" for="profile-gpu"><strong>GPU</strong></label></div>'
        '<ul class="sciencelab-resources small"><li><span class="text-muted">Image:</span> Py &lt;3</li>'
        '<li><span class="text-muted">GPU:</span> A100 &amp; co</li></ul>'
        '<p class="sciencelab-unavailable small text-danger mb-1">Not available on this hub: no GPU on this machine '
        "(NVML: Driver Not Loaded)</p></div></div>"
    ) in form
    # The remembered profile cannot start: the default one is selected instead.
    assert 'id="profile-cpu" value="cpu" checked="checked"' in form

    no_a100 = make_options_form(CONFIG, frozenset(), {}, {"a100": (0, 0)})
    assert "Not available on this hub: this hub has no A100 &amp; co</p>" in no_a100
    all_taken = make_options_form(CONFIG, frozenset(), {}, {"a100": (0, 1)})
    assert 'value="gpu">' in all_taken and "0 of 1 A100 &amp; co free" in all_taken


def test_settings_the_spawner_does_not_apply_are_marked_with_its_reason():
    not_applied = NotApplied(("image", "cvmfs"), "only <on> Kubernetes", "No containers & no mounts here.")
    form = make_options_form(CONFIG, frozenset(), {}, {"a100": (1, 1)}, not_applied=not_applied)
    marker = ' <span class="badge text-bg-secondary fw-normal sciencelab-not-applied-marker">only &lt;on&gt; Kubernetes</span>'
    assert form.startswith(
        FORM_STYLE
        + '<div class="alert alert-info small sciencelab-not-applied">No containers &amp; no mounts here.</div>'
    )
    assert f'<label class="form-label" for="cpu-image">Image{marker}</label>' in form
    assert f'<legend class="form-label fs-6">CVMFS repositories{marker}</legend>' in form
    assert '<label class="form-check-label" for="cpu-collaborative">Real-time collaboration</label>' in form
    assert f'<li><span class="text-muted">Image:</span> Py &lt;3{marker}</li>' in form
    assert '<li><span class="text-muted">GPU:</span> A100 &amp; co</li>' in form
    assert form.count(marker) == 3


def test_an_offloaded_profile_shows_its_batch_job_as_its_fixed_size():
    offloaded = make_profile_config(
        [
            {
                "slug": "hpc",
                "display_name": "HPC",
                "offload": {"node": "interlink-slurm", "resources": {"cpu": 8, "memory": "64G", "gpus": 1}},
            }
        ],
        "test",
    )
    form = make_options_form(offloaded, frozenset(), {}, {})
    assert (
        '<ul class="sciencelab-resources small"><li><span class="text-muted">Size:</span> '
        "8 CPUs, 64G memory, 1 GPU on the HPC cluster</li></ul>"
    ) in form
    assert 'class="sciencelab-options"' not in form


def test_form_says_when_nothing_is_allowed():
    only_secret = make_profile_config([{"slug": "s", "display_name": "S", "allowed_groups": ["x"]}], "test")
    assert "No server profile is available to your groups" in make_options_form(only_secret, frozenset(), {}, {})


def test_options_from_form_reads_only_the_selected_profile():
    formdata = {
        "profile": ["cpu"],
        "cpu.image": ["root"],
        "cpu.cvmfs": ["sft.cern.ch", "cms.cern.ch"],
        "cpu.collaborative": ["on"],
        "gpu.gpu_count": ["2"],
    }
    assert options_from_form(formdata, CONFIG) == {
        "profile": "cpu",
        "image": "root",
        "cvmfs": ["sft.cern.ch", "cms.cern.ch"],
        "collaborative": True,
    }


def test_options_from_form_unticked_boxes_and_switches_mean_none_and_off():
    assert options_from_form({"profile": ["cpu"], "cpu.image": ["py"]}, CONFIG) == {
        "profile": "cpu",
        "image": "py",
        "cvmfs": [],
        "collaborative": False,
    }


def test_options_from_form_passes_crafted_fields_on_for_the_checks():
    assert options_from_form({"profile": ["gpu"], "gpu.gpu_count": ["two"], "gpu.image": ["evil"]}, CONFIG) == {
        "profile": "gpu",
        "gpu_count": "two",
        "image": "evil",
    }
    assert options_from_form({"profile": ["gpu"], "gpu.gpu_count": ["2"]}, CONFIG)["gpu_count"] == 2
    # Superscript two is a digit to str.isdigit, not to int; 5000 digits are more than int reads.
    assert options_from_form({"profile": ["gpu"], "gpu.gpu_count": ["²"]}, CONFIG)["gpu_count"] == "²"
    assert options_from_form({"profile": ["gpu"], "gpu.gpu_count": ["9" * 5000]}, CONFIG)["gpu_count"] == "9" * 5000
    assert options_from_form({"profile": ["nope"], "nope.x": ["1"]}, CONFIG) == {"profile": "nope", "x": "1"}
    assert options_from_form({}, CONFIG) == {}
    # Two values for one choice, a switch that is not "on": passed on, for the checks to refuse.
    assert options_from_form(
        {"profile": ["cpu", "gpu"], "cpu.image": ["py", "root"], "cpu.collaborative": ["yes"]}, CONFIG
    ) == {"profile": ["cpu", "gpu"]}
    assert options_from_form(
        {"profile": ["cpu"], "cpu.image": ["py", "root"], "cpu.collaborative": ["yes"]}, CONFIG
    ) == {
        "profile": "cpu",
        "image": ["py", "root"],
        "collaborative": "yes",
        "cvmfs": [],
    }


def test_options_from_form_refuses_fields_that_are_not_the_forms():
    # tornado's XSRF field and the other profiles' fields belong to the form.
    assert options_from_form({"profile": ["gpu"], "_xsrf": ["t"], "cpu.image": ["root"]}, CONFIG) == {"profile": "gpu"}
    for formdata, message in [
        (
            {"profile": ["cpu"], "memory": ["64G"]},
            "memory: ['64G'] is not a field of the spawn form; the form sends profile and <profile>.<option> fields",
        ),
        (
            {"profile": ["cpu"], "gpu.image": ["py"]},
            "gpu.image: ['py'] is not a field of the spawn form; the form sends profile and <profile>.<option> fields",
        ),
        (
            {"cpu.image": ["root"]},
            "cpu.image: ['root'] is sent without a profile; the form sends profile and <profile>.<option> fields",
        ),
        (
            {"profile": ["cpu"], "x" * 300: ["y" * 100_000]},
            f"{'x' * 80}… (300 characters): ['{'y' * 78}… (100004 characters) is not a field of the spawn form; "
            "the form sends profile and <profile>.<option> fields",
        ),
    ]:
        with pytest.raises(UserOptionsError) as refused:
            options_from_form(formdata, CONFIG)
        assert str(refused.value) == message
