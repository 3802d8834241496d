"""Reading the project's YAML files (experiment configs, boards) strictly.

PyYAML keeps the last of two equal keys in one mapping and drops the first without a word, so a
config with two ``train:`` sections trains with only the second. Here a repeated key is an error.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from common.errors import UserError


class _StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key repeated within one mapping."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: merged keys may be overridden
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            repeated = key in seen
        except TypeError:  # an unhashable key: SafeLoader reports it itself
            continue
        if repeated:
            raise yaml.constructor.ConstructorError(
                None, None, f"key '{key}' appears twice in one mapping (line {key_node.start_mark.line + 1})",
                key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml_text(text: str):
    """Parse YAML text; yaml.YAMLError on bad syntax or a repeated key."""
    return yaml.load(text, Loader=_StrictLoader)


def read_yaml(path: str | Path):
    """The YAML document in ``path``; a one-line UserError if it is not valid YAML."""
    path = Path(path)
    try:
        return load_yaml_text(path.read_text())
    except yaml.YAMLError as e:
        raise UserError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
