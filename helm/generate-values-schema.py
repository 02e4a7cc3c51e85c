#!/usr/bin/env python3
"""Write helm/sciencelab/values.schema.json, which helm checks values against, from its documented
source helm/sciencelab/values.schema.yaml.

Descriptions and titles are dropped (they are for people, and make the packaged chart larger), and
`$defs.profileFile` gets the profile file's schema from spawner/sciencelab_spawner/profiles.schema.yaml,
so `singleuser.profiles` is checked by the same schema as the hub checks a profile file with.

    python helm/generate-values-schema.py          # write the JSON
    python helm/generate-values-schema.py --check  # exit 1 when the JSON is not up to date
"""

import argparse
import json
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
VALUES_SCHEMA_YAML = REPO / "helm" / "sciencelab" / "values.schema.yaml"
VALUES_SCHEMA_JSON = REPO / "helm" / "sciencelab" / "values.schema.json"
PROFILES_SCHEMA_YAML = REPO / "spawner" / "sciencelab_spawner" / "profiles.schema.yaml"
PROFILE_FILE_DEF = "profileFile"
DOCUMENTATION_KEYS = {"description", "title", "$comment"}
# Keywords whose value is a schema, a list of schemas, or a map of names to schemas.
SCHEMA_KEYWORDS = {"additionalProperties", "items", "not", "if", "then", "else", "propertyNames", "contains"}
SCHEMA_LIST_KEYWORDS = {"allOf", "anyOf", "oneOf", "prefixItems"}
SCHEMA_MAP_KEYWORDS = {"properties", "patternProperties", "$defs"}


def without_documentation(schema: object) -> object:
    """`schema` without descriptions and titles; a property *named* `description` stays."""
    if not isinstance(schema, dict):
        return schema
    cleaned = {}
    for key, value in schema.items():
        if key in DOCUMENTATION_KEYS:
            continue
        if key in SCHEMA_KEYWORDS:
            value = without_documentation(value)
        elif key in SCHEMA_LIST_KEYWORDS:
            value = [without_documentation(item) for item in value]
        elif key in SCHEMA_MAP_KEYWORDS:
            value = {name: without_documentation(item) for name, item in value.items()}
        cleaned[key] = value
    return cleaned


def rebased_refs(schema: object, old: str, new: str) -> object:
    """`schema` with every `$ref` starting with `old` starting with `new` instead."""
    if isinstance(schema, dict):
        return {
            key: (new + value[len(old) :])
            if key == "$ref" and isinstance(value, str) and value.startswith(old)
            else rebased_refs(value, old, new)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [rebased_refs(item, old, new) for item in schema]
    return schema


def make_values_schema(values_schema: dict, profiles_schema: dict) -> dict:
    """The JSON schema helm uses: `values_schema` with the profile file's schema embedded (pure)."""
    if values_schema.get("$defs", {}).get(PROFILE_FILE_DEF) != {}:
        raise ValueError(f"values.schema.yaml must hold the placeholder `$defs: {{{PROFILE_FILE_DEF}: {{}}}}`")
    profile_file = {key: value for key, value in profiles_schema.items() if key != "$schema"}
    # The profile schema's own references point into its $defs, which now sit one level down.
    profile_file = rebased_refs(profile_file, "#/$defs/", f"#/$defs/{PROFILE_FILE_DEF}/$defs/")
    schema = {**values_schema, "$defs": {**values_schema["$defs"], PROFILE_FILE_DEF: profile_file}}
    return without_documentation(schema)


def render() -> str:
    schema = make_values_schema(
        yaml.safe_load(VALUES_SCHEMA_YAML.read_text(encoding="utf-8")),
        yaml.safe_load(PROFILES_SCHEMA_YAML.read_text(encoding="utf-8")),
    )
    return json.dumps(schema, indent=2) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the JSON is up to date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if VALUES_SCHEMA_JSON.read_text(encoding="utf-8") != text:
            print(f"{VALUES_SCHEMA_JSON} is out of date: run python helm/generate-values-schema.py", file=sys.stderr)
            return 1
        return 0
    VALUES_SCHEMA_JSON.write_text(text, encoding="utf-8")
    print(f"wrote {VALUES_SCHEMA_JSON.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
