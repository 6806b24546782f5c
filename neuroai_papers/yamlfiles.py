"""Read the YAML files the build takes (dumps/manifest.yml, metadata.yml, the reference
files), refusing a bad one with one line that names the file and the line.

PyYAML's safe loader is stricter here in two ways. A key given twice in one mapping is an
error, not the last one silently winning (two capture dates for one dump). A date that
does not exist (`2025-02-30`) is an error with its line, not a ValueError without one.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from yaml.constructor import ConstructorError

from .files import special_file_kind
from .parse import DumpError


class StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate keys and names the line of an impossible date."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise ConstructorError(None, None, f"`{key}` is given twice",
                                       key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as error:
            raise ConstructorError(None, None, f"{node.value} is not a date ({error})",
                                   node.start_mark) from None


StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", StrictLoader.construct_yaml_timestamp)


def read_yaml(path: Path) -> object:
    """Return the data of the YAML file at `path`; raise DumpError naming the file (and the
    line, when one line is at fault) if it cannot be read or is not valid YAML."""
    try:
        kind = special_file_kind(path)  # before opening it: a named pipe waits for a writer
        if kind is not None:
            raise DumpError(f"{path}: cannot be read (it is {kind}, not a file)")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise DumpError(f"{path}: cannot be read ({reason})") from None
    try:
        return yaml.load(text, Loader=StrictLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else f"{path}"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise DumpError(f"{where}: not valid YAML ({problem})") from None
