"""Test helper: every key path into a parsed YAML document (for mutation tests)."""


def yaml_paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from yaml_paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from yaml_paths(v, (*prefix, i))
