"""The pure profile core: exact outputs for the admin's config, user options and the form."""

import pytest

from sciencelab_spawner.profiles import (
    Profile,
    ProfileConfigError,
    UserOptionsError,
    default_profile,
    make_options_form,
    make_profiles,
    make_user_options_schema,
    options_from_form,
    resolve_profile,
)

ENTRIES = [
    {"slug": "small", "display_name": "Small", "cpu_limit": 1, "mem_limit": "2G"},
    {"slug": "gpu", "display_name": "GPU <A100>", "description": "One A100 & friends", "default": True},
]


def test_make_profiles_builds_frozen_profiles():
    assert make_profiles(ENTRIES) == (
        Profile(slug="small", display_name="Small", cpu_limit=1.0, mem_limit="2G"),
        Profile(slug="gpu", display_name="GPU <A100>", description="One A100 & friends", default=True),
    )


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([], "profiles: at least one profile is needed, got an empty list"),
        (["small"], "profiles[0]: expected a dict, got str"),
        ([{"slug": "a", "display_name": "A", "image": "x"}],
         "profiles[0]: unknown field 'image'; known fields: slug, display_name, description, default, cpu_limit, mem_limit"),
        ([{"display_name": "A"}], "profiles[0]: missing required field 'slug'"),
        ([{"slug": "Big One", "display_name": "A"}],
         "profiles[0].slug: 'Big One' must be lowercase letters, digits and '-', 1-63 characters"),
        ([{"slug": "a", "display_name": "A", "cpu_limit": True}],
         "profiles[0].cpu_limit: expected a number of CPU cores such as 2, got True"),
        ([{"slug": "a", "display_name": "A", "cpu_limit": 0}], "profiles[0].cpu_limit: must be > 0 cores, got 0"),
        ([{"slug": "a", "display_name": "A", "mem_limit": "2 GB"}],
         "profiles[0].mem_limit: '2 GB' is not a size such as '512M' or '2G'"),
        ([{"slug": "a", "display_name": "A"}, {"slug": "a", "display_name": "B"}], "profiles: duplicate slug(s): a"),
        ([{"slug": "a", "display_name": "A", "default": True}, {"slug": "b", "display_name": "B", "default": True}],
         "profiles: at most one profile may be the default, got: a, b"),
    ],
)
def test_make_profiles_names_entry_and_field(entries, message):
    with pytest.raises(ProfileConfigError) as error:
        make_profiles(entries)
    assert str(error.value) == message


def test_default_profile_is_marked_one_else_first():
    assert default_profile(make_profiles(ENTRIES)).slug == "gpu"
    assert default_profile(make_profiles(ENTRIES[:1])).slug == "small"


def test_user_options_schema():
    assert make_user_options_schema(make_profiles(ENTRIES)) == {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "profile": {
                "type": "string",
                "title": "Profile",
                "description": "The server profile to start, one of the slugs the admin allows.",
                "enum": ["small", "gpu"],
                "default": "gpu",
            }
        },
    }


def test_resolve_profile_picks_named_or_default():
    profiles = make_profiles(ENTRIES)
    assert resolve_profile(profiles, {"profile": "small"}).slug == "small"
    assert resolve_profile(profiles, {}).slug == "gpu"


@pytest.mark.parametrize(
    ("user_options", "message", "field"),
    [
        ({"profile": "no-such"}, "profile: 'no-such' is not allowed; choose one of: small, gpu", "profile"),
        ({"profile": ["small"]}, "profile: ['small'] is not allowed; choose one of: small, gpu", "profile"),
        ({"image": "evil:latest"}, "user_options: 'image' is not allowed; choose one of: profile", "user_options"),
    ],
)
def test_resolve_profile_refuses_what_is_not_allowed(user_options, message, field):
    with pytest.raises(UserOptionsError) as error:
        resolve_profile(make_profiles(ENTRIES), user_options)
    assert str(error.value) == message
    assert error.value.field == field


def test_options_from_form_unpacks_single_values():
    assert options_from_form({"profile": ["small"], "empty": []}) == {"profile": "small"}


def test_options_form_escapes_admin_strings_and_checks_default():
    assert make_options_form(make_profiles(ENTRIES)) == (
        '<fieldset class="sciencelab-profiles"><legend>Profile</legend>'
        '<label class="sciencelab-profile" for="profile-small">'
        '<input type="radio" name="profile" id="profile-small" value="small"> <strong>Small</strong></label>'
        '<label class="sciencelab-profile" for="profile-gpu">'
        '<input type="radio" name="profile" id="profile-gpu" value="gpu" checked="checked"> '
        "<strong>GPU &lt;A100&gt;</strong>"
        '<div class="sciencelab-profile-description">One A100 &amp; friends</div></label>'
        "</fieldset>"
    )
