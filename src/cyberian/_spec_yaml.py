"""The bounded YAML reader behind :func:`cyberian.spec.parse_spec`.

A spec is untrusted text (the server receives it in requests), so it is read
within explicit limits, enforced while YAML is composed and before any Python
object is built: the document size in bytes, the number of alias references
(each one can multiply the document, the "billion laughs"), and the nesting
depth of sequences and mappings. Mapping keys must be scalars. Every problem
is a :class:`~cyberian.exceptions.SpecError` of one bounded line; nothing
else escapes, whatever the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import yaml
from yaml.events import AliasEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from ._text import brief, clip
from .exceptions import SpecError

__all__ = [
    "DEFAULT_SPEC_LIMITS",
    "MAX_SPEC_ALIASES",
    "MAX_SPEC_BYTES",
    "MAX_SPEC_DEPTH",
    "SpecLimits",
    "check_size",
    "read_yaml",
]

MAX_SPEC_BYTES: Final = 64 * 1024
"""Default largest spec, in UTF-8 bytes (the shipped spec is under 1 KB)."""

MAX_SPEC_ALIASES: Final = 32
"""Default largest number of alias references (``*name``) in one spec."""

MAX_SPEC_DEPTH: Final = 16
"""Default deepest nesting of sequences and mappings (a valid spec needs 2)."""

@dataclass(frozen=True)
class SpecLimits:
    """How much YAML a spec may be: bytes, alias references and nesting depth."""

    max_bytes: int = MAX_SPEC_BYTES
    max_aliases: int = MAX_SPEC_ALIASES
    max_depth: int = MAX_SPEC_DEPTH


DEFAULT_SPEC_LIMITS: Final = SpecLimits()
"""The limits :func:`~cyberian.spec.parse_spec` and :func:`~cyberian.spec.load_spec` apply."""

def _component(index: Any) -> str:
    if isinstance(index, ScalarNode):
        return clip(str(index.value))
    if isinstance(index, int):
        return f"[{index}]"
    return "?"


class _BoundedLoader(yaml.SafeLoader):
    """A safe loader that refuses, while composing, what :class:`SpecLimits` forbids."""

    def __init__(self, stream: str, limits: SpecLimits) -> None:
        super().__init__(stream)
        self.limits = limits
        self._aliases = 0
        self._path: list[str] = []

    def _where(self) -> str:
        parts: list[str] = []
        for part in self._path:
            parts.append(part if part.startswith("[") or not parts else "." + part)
        return "".join(parts) or "spec"

    def _refuse(self, message: str) -> SpecError:
        mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
        return SpecError(f"{message} (line {mark.line + 1})", path=self._where())

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        """Compose one node, counting aliases and depth; a mapping key must be a scalar."""
        if isinstance(parent, MappingNode) and index is None:
            if not self.check_event(ScalarEvent):
                raise self._refuse("a mapping key must be a plain scalar (a name), "
                                   "not a sequence, a mapping or an alias")
            return super().compose_node(parent, index)  # type: ignore[arg-type]  # None: a key
        if parent is not None:
            self._path.append(_component(index))
        try:
            if self.check_event(AliasEvent):
                self._aliases += 1
                if self._aliases > self.limits.max_aliases:
                    raise self._refuse(f"more than {self.limits.max_aliases} alias "
                                       "references (limit max_aliases)")
            elif len(self._path) >= self.limits.max_depth and not self.check_event(ScalarEvent):
                raise self._refuse(f"nested deeper than {self.limits.max_depth} levels "
                                   "(limit max_depth)")
            return super().compose_node(parent, index)
        finally:
            if parent is not None:
                self._path.pop()


def _construct_unique_mapping(loader: yaml.SafeLoader, node: MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise SpecError(f"duplicate key {brief(key)} (line {key_node.start_mark.line + 1})")
        seen.add(key)
    return loader.construct_mapping(node)


_BoundedLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc)
    return f"not valid YAML{where}: {clip(problem)}"


def check_size(size: int, limits: SpecLimits) -> None:
    """Refuse a spec of ``size`` bytes when it is over ``limits.max_bytes``."""
    if size > limits.max_bytes:
        raise SpecError(f"the spec is larger than {limits.max_bytes} bytes (limit max_bytes)")


def read_yaml(text: str, limits: SpecLimits = DEFAULT_SPEC_LIMITS) -> Any:
    """The one YAML document in ``text``, read within ``limits``; :class:`SpecError` otherwise.

    Duplicate keys and non-scalar keys are refused. The result is plain data
    (dicts, lists, scalars); it may share sub-objects where the text used aliases.
    """
    # A character is at least one byte: only a text that may fit is encoded to measure it.
    check_size(len(text) if len(text) > limits.max_bytes
               else len(text.encode("utf-8", "surrogatepass")), limits)
    try:
        loader = _BoundedLoader(text, limits)  # the reader refuses unprintable characters
    except yaml.YAMLError as exc:
        raise SpecError(_yaml_problem(exc)) from None
    try:
        return loader.get_single_data()
    except SpecError:
        raise
    except yaml.YAMLError as exc:
        raise SpecError(_yaml_problem(exc)) from None
    except (ValueError, TypeError, OverflowError, AttributeError) as exc:
        # PyYAML's constructors for explicit tags (!!int, !!timestamp, ...) raise these.
        raise SpecError(f"not valid YAML: {clip(str(exc))}") from None
    finally:
        loader.dispose()
