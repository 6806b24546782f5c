"""Read the YAML files the build takes (dumps/manifest.yml, metadata.yml, the reference
files), refusing a bad one with one line that names the file and the line.

PyYAML's safe loader is stricter here in two ways. A key given twice in one mapping is an
error, not the last one silently winning (two capture dates for one dump). A date that
does not exist (`2025-02-30`) is an error with its line, not a ValueError without one.
A value that is valid YAML but not what the file's reader expects is refused with its line
too (YamlDocument.error: the line comes from the node the value was read from), and so is a
byte that is not UTF-8.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml
from yaml.constructor import ConstructorError

from .files import special_file_kind
from .parse import DumpError, line_number_at


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
    return read_yaml_document(path).data


@dataclass
class YamlDocument:
    """A YAML file's data, and its nodes, which know the line each value came from: a
    refusal of a value the YAML itself allows (a year out of range, a key that means
    nothing) can then name the line, as a YAML error does."""

    path: Path
    data: object
    root: yaml.Node | None

    def where(self, *keys, key: bool = False) -> str:
        """Return `file:line` of the value at `keys` (mapping keys, list positions), or of its
        key (`key`); the line of the deepest of them found, or the file alone."""
        node, line = self.root, None
        for depth, step in enumerate(keys, 1):
            found = child_node(node, step)
            if found is None:
                break
            key_node, node = found
            line = (key_node if key and depth == len(keys) else node).start_mark.line + 1
        return f"{self.path}" if line is None else f"{self.path}:{line}"

    def error(self, message: str, *keys, key: bool = False) -> DumpError:
        """Return the refusal `message` of the value at `keys`, with its file and line."""
        return DumpError(f"{self.where(*keys, key=key)}: {message}")


def child_node(node: yaml.Node | None, step) -> tuple[yaml.Node, yaml.Node] | None:
    """Return (key node, value node) of the entry `step` of a mapping node (compared as
    written: `2024` finds the key 2024), or (item, item) of a sequence node's position."""
    if isinstance(node, yaml.MappingNode):
        return next(((k, v) for k, v in node.value
                     if isinstance(k, yaml.ScalarNode) and k.value == str(step)), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
        return node.value[step], node.value[step]
    return None


def read_yaml_document(path: Path) -> YamlDocument:
    """Return the YAML file at `path` with the lines of its values; raise DumpError as
    read_yaml does."""
    text = read_text(path)
    loader = StrictLoader(text)
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else f"{path}"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise DumpError(f"{where}: not valid YAML ({problem})") from None
    finally:
        loader.dispose()
    return YamlDocument(path, data, root)


def read_text(path: Path) -> str:
    """Return the text of the file at `path`; raise DumpError naming the file, and the line
    of a byte that is not UTF-8."""
    try:
        kind = special_file_kind(path)  # before opening it: a named pipe waits for a writer
        if kind is not None:
            raise DumpError(f"{path}: cannot be read (it is {kind}, not a file)")
        data = path.read_bytes()
    except OSError as error:
        raise DumpError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = line_number_at(data, error.start)
        raise DumpError(f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x}; save "
                        f"the file as UTF-8)") from None
