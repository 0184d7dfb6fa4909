"""YAML with line numbers: the layer scenario and policy files share.

PyYAML's SafeLoader composes the document into a node tree, which is walked here so that
every mapping key, mapping value and sequence item keeps its line and dotted path (e.g.
`processes.A.threads.main[2]`); a `Checker` turns those into one-line
`file:line: message` errors (`mmcheck.errors.ScenarioError`).

Hostile input is refused before it costs anything: explicit tags (`!!int`, `!!bool`,
`!!timestamp`, ...; `!!str` is quoting) are not allowed, scalars are only ever strings, integers, floats,
booleans or null (a plain scalar YAML would read as a timestamp stays text), integers
longer than `MAX_INT_DIGITS` digits are refused, and aliases may not expand the document
beyond `MAX_NODES` nodes ("billion laughs").
"""

from __future__ import annotations

import difflib

import yaml

from ..errors import ScenarioError

MAX_NODES = 100_000
"""Nodes a document may have after alias expansion."""
MAX_INT_DIGITS = 30
"""Digits an integer scalar may have (every bound mmcheck reads is far smaller)."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


# --------------------------------------------------------------------------------------
# YAML -> node tree with lines and paths


class Node:
    """A YAML node after composition: kind "map" (value: dict key -> Node, key_lines),
    "seq" (value: list of Node) or "scalar" (value: the constructed Python scalar)."""

    __slots__ = ("kind", "value", "line", "path", "raw", "key_lines")

    def __init__(self, kind, value, line, path, raw=None, key_lines=None):
        self.kind = kind
        self.value = value
        self.line = line
        self.path = path
        self.raw = raw  # the scalar's source text
        self.key_lines = key_lines


def child_path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def show(value: object) -> str:
    """A value the way a user would write it in YAML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return repr(value) if isinstance(value, str) else str(value)


def at_path(path: str) -> str:
    """The message prefix naming a field (nothing for the document itself)."""
    return f"{path}: " if path else ""


def suggest(word: object, candidates) -> str:
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def one_line(text: str) -> str:
    return " ".join(str(text).split())


_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_INT_TAG = "tag:yaml.org,2002:int"
_FLOAT_TAG = "tag:yaml.org,2002:float"


class Composer:
    def __init__(self, text: str, path: str):
        self.text = text
        self.path = path
        self.active: set[int] = set()
        self.budget = MAX_NODES

    def err(self, line, message):
        raise ScenarioError(self.path, line, one_line(message))

    def parse(self) -> Node | None:
        loader = None
        try:
            loader = yaml.SafeLoader(self.text)
            root = loader.get_single_node()
            if root is None:
                return None
            self.loader = loader
            return self.convert(root, "")
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            line = mark.line + 1 if mark is not None else 1
            problem = e.problem or e.context or "syntax error"
            msg = f"invalid YAML: {problem}"
            if e.context and e.problem:
                if e.problem.startswith("but "):
                    msg = f"invalid YAML: {e.context}, {e.problem}"
                elif e.context_mark is not None:
                    msg += f" ({e.context} at line {e.context_mark.line + 1})"
            self.err(line, msg)
        except yaml.reader.ReaderError as e:
            line = self.text.count("\n", 0, max(e.position, 0)) + 1
            char = f"#x{e.character:02x}" if isinstance(e.character, int) else repr(e.character)
            self.err(line, f"invalid YAML: {e.reason} ({char})")
        except yaml.YAMLError as e:  # pragma: no cover - every PyYAML error is one of the above
            self.err(1, f"invalid YAML: {e}")
        except RecursionError:
            self.err(1, "invalid YAML: nesting too deep")
        finally:
            if loader is not None:
                loader.dispose()
        return None  # pragma: no cover

    def convert(self, node, path: str, at_line: int | None = None) -> Node:
        line = node.start_mark.line + 1
        if id(node) in self.active:
            self.err(at_line or line, f"{at_path(path)}recursive YAML alias")
        self.budget -= 1
        if self.budget < 0:
            self.err(at_line or line, f"{at_path(path)}YAML aliases expand the document "
                                      f"beyond {MAX_NODES:,} nodes")
        if isinstance(node, yaml.ScalarNode):
            return Node("scalar", self.scalar(node, path), line, path, raw=node.value)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ_TAG:
                    self.err(line, f"{at_path(path)}unsupported YAML tag {node.tag!r}")
                items = [self.convert(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
                return Node("seq", items, line, path)
            if node.tag != _MAP_TAG:
                self.err(line, f"{at_path(path)}unsupported YAML tag {node.tag!r}")
            return self.convert_map(node, path, line)
        finally:
            self.active.discard(id(node))

    def scalar(self, node, path: str):
        """The value of a scalar: str, int, float, bool or None, nothing else."""
        line = node.start_mark.line + 1
        raw = node.value
        implicit = _STR_TAG if node.style else self.loader.resolve(
            yaml.ScalarNode, raw, (True, False))
        if node.tag != implicit and node.tag != _STR_TAG:  # `!!str 5` is quoting
            self.err(line, f"{at_path(path)}explicit YAML tags are not allowed "
                           f"({node.tag.replace('tag:yaml.org,2002:', '!!')})")
        tag = node.tag
        if tag == _STR_TAG:
            return raw
        if tag not in (_NULL_TAG, _BOOL_TAG, _INT_TAG, _FLOAT_TAG):
            return raw  # a timestamp, '=' (the value tag): the text as written
        if tag == _INT_TAG and sum(c.isalnum() for c in raw) > MAX_INT_DIGITS:
            self.err(line, f"{at_path(path)}number too large ({len(raw)} characters)")
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, TypeError, OverflowError, KeyError, AttributeError):
            return raw

    def convert_map(self, node, path: str, line: int) -> Node:
        value: dict[str, Node] = {}
        key_lines: dict[str, int] = {}
        merged: list[tuple[str, int, Node]] = []
        for key_node, value_node in node.value:
            kline = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                merged.extend(self.merge_sources(value_node, path))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.err(kline, f"{at_path(path)}mapping keys must be plain names")
            key = self.scalar(key_node, path)
            if not isinstance(key, str):
                self.err(kline, f"{at_path(path)}key {key_node.value} is not a string; "
                                f"quote it: '{key_node.value}'")
            if key in value:
                self.err(kline, f"{at_path(path)}duplicate key '{key}' "
                                f"(first at line {key_lines[key]})")
            key_lines[key] = kline
            value[key] = self.convert(value_node, child_path(path, key), kline)
        # `<<: *anchor` merges: explicit keys win, earlier merges win over later ones.
        for key, kline, child in merged:
            if key not in value:
                key_lines[key] = kline
                value[key] = child
        return Node("map", value, line, path, key_lines=key_lines)

    def merge_sources(self, value_node, path):
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        out = []
        for src in sources:
            if not isinstance(src, yaml.MappingNode):
                self.err(src.start_mark.line + 1,
                         f"{at_path(path)}'<<' merges only mappings")
            m = self.convert(src, path)
            out.extend((k, m.key_lines[k], v) for k, v in m.value.items())
        return out


# --------------------------------------------------------------------------------------
# validation helpers


class Checker:
    def __init__(self, path: str):
        self.path = path

    def err(self, line, message):
        raise ScenarioError(self.path, line, one_line(message))

    @staticmethod
    def at(node: Node) -> str:
        return at_path(node.path)

    def mapping(self, node: Node, what: str) -> dict[str, Node]:
        if node.kind != "map":
            self.err(node.line, f"{self.at(node)}expected a mapping ({what}), "
                                f"got {self.describe(node)}")
        return node.value

    def sequence(self, node: Node, what: str) -> list[Node]:
        if node.kind != "seq":
            self.err(node.line, f"{self.at(node)}expected a list ({what}), "
                                f"got {self.describe(node)}")
        return node.value

    @staticmethod
    def describe(node: Node) -> str:
        if node.kind == "map":
            return "a mapping"
        if node.kind == "seq":
            return "a list"
        if node.value is None:
            return "nothing"
        return show(node.value)

    def keys(self, node: Node, allowed, what: str = "key") -> None:
        for key in node.value:
            if key not in allowed:
                where = f"{node.path}: unknown {what}" if node.path else f"unknown top-level {what}"
                self.err(node.key_lines[key], f"{where} '{key}'{suggest(key, allowed)}"
                                              f" (allowed: {', '.join(allowed)})")

    def string(self, node: Node, what: str) -> str:
        if node.kind != "scalar" or not isinstance(node.value, str):
            hint = ""
            if node.kind == "scalar" and node.value is not None:
                hint = f"; quote it: '{node.raw}'"
            self.err(node.line, f"{self.at(node)}expected {what}, "
                                f"got {self.describe(node)}{hint}")
        return node.value

    def positive_int(self, node: Node, key: str) -> int:
        v = node.value
        if node.kind != "scalar" or isinstance(v, bool) or not isinstance(v, int) or v < 1:
            self.err(node.line, f"{key} must be an integer >= 1, got {self.describe(node)}")
        return v




def read_text(path: str) -> str:
    """The UTF-8 text of a scenario or policy file; ScenarioError if it cannot be read."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise ScenarioError(path, None, f"cannot read file: {e.strerror or e}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ScenarioError(path, line, "file is not valid UTF-8 text") from None
