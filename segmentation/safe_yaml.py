"""A bounded YAML reader for definitions files: no anchors or aliases, no key written twice in a mapping, a
maximum size and nesting depth.

Why: `yaml.safe_load` builds whatever the text describes. An alias bomb (`a: &a [x, x]`, `b: &b [*a, *a]`,
... nine levels) expands a few hundred bytes into millions of nodes, and an error message quoting such a value
grew to megabytes; a document nested 10,000 deep ends in a `RecursionError` inside the composer. Definitions
are short hand-written files: they need neither aliases nor deep nesting, so both are refused before anything
is built, and a failure is a `DefinitionsError` whose message is one short line. A key written twice in one
mapping is refused too, naming both lines: YAML keeps the last one silently, so a second `audiences:` section
appended to a file dropped every audience of the first (and `definitions apply` moved all their members out).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionStartEvent, NodeEvent
from yaml.nodes import MappingNode, Node

from segmentation.config_reading import DefinitionsError

__all__ = ["MAX_DEPTH", "MAX_MESSAGE", "MAX_NODES", "MAX_SIZE", "load_bounded", "one_line"]

MAX_SIZE = 256 * 1024  # bytes (UTF-8) of a definitions file; the shipped default is ~6 KB
MAX_DEPTH = 32  # nested mappings / lists; the default uses 4
MAX_NODES = 10_000  # scalars + collections in the whole document
MAX_MESSAGE = 300  # characters of an error message: a quoted value never floods a terminal or a log
_MERGE = "tag:yaml.org,2002:merge"  # the `<<` key


def one_line(message: str, limit: int = MAX_MESSAGE) -> str:
    """The message on one line, cut to `limit` characters (with an ellipsis) when longer."""
    flat = " ".join(message.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases and counts depth and nodes while composing."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent) or (isinstance(event, NodeEvent) and event.anchor is not None):
            line = event.start_mark.line + 1 if event.start_mark else 0
            raise DefinitionsError(f"line {line}: YAML anchors and aliases (&, *) are not allowed")
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise DefinitionsError(f"more than {MAX_NODES} YAML nodes")
        nested = isinstance(event, CollectionStartEvent)
        if nested:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else 0
                raise DefinitionsError(f"line {line}: nested deeper than {MAX_DEPTH} levels")
        try:
            return super().compose_node(parent, index)
        finally:
            if nested:
                self._depth -= 1

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """SafeLoader's mapping, once no key of its own is written twice (the last would silently win)."""
        first: dict[object, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:  # `<<`: merged keys may be overridden, that is what it is for
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                earlier = first.get(key)
            except TypeError:  # an unhashable key: SafeLoader refuses it with its own message
                continue
            if earlier is not None:
                raise DefinitionsError(f"line {line}: duplicate key {key!r} (first on line {earlier})")
            first[key] = line
        return super().construct_mapping(node, deep)


def load_bounded(text: str, origin: str) -> object:
    """Parse one YAML document within the limits; any failure is a one-line `DefinitionsError`."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SIZE:
        raise DefinitionsError(f"{origin}: larger than {MAX_SIZE} bytes, the limit of a definitions file")
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except DefinitionsError as exc:
        raise DefinitionsError(one_line(f"{origin}: {exc}")) from None
    except yaml.YAMLError as error:  # not `exc` again: mypyc gives one name one type per function
        raise DefinitionsError(one_line(f"{origin}: not valid YAML: {error}")) from None
    except (ValueError, TypeError, OverflowError) as failed:
        # PyYAML's own constructors: a date that is no date (2024-13-01), an int over Python's 4,300 digits,
        # `!!int abc`. They raise plain errors, which gave a traceback (exit 1; HTTP 500 in a preview).
        raise DefinitionsError(one_line(f"{origin}: not valid YAML: {failed}")) from None
    finally:
        loader.dispose()
