"""``record``: orch's frozen dataclass, built with fewer generated methods.

``dataclasses.dataclass(frozen=True)`` compiles six methods for every class at import
(``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, ``__setattr__``, ``__delattr__``):
on Python before 3.13 each is a ``compile`` of its own, about 0.1 ms, and orch defines
a hundred records, so a command paid about 60 ms of its start-up for them. ``record``
lets dataclasses generate what must be per class (``__init__`` and the frozen
``__setattr__``/``__delattr__``) and gives every record the same ``__eq__``, ``__hash__``
and ``__repr__``, which read the fields dataclasses recorded: the same results as the
generated ones (equal when of the same class with equal compared fields, hashed on the
fields ``hash``/``compare`` name, ``Name(field=value, ...)``). A class that defines one
of the three itself keeps its own. Standard library only.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")

_COMPARED, _HASHED, _SHOWN = "__record_compared__", "__record_hashed__", "__record_shown__"


@dataclass_transform(frozen_default=True, field_specifiers=(dataclasses.field, dataclasses.Field))
def record(cls: type[T]) -> type[T]:
    """A frozen dataclass of ``cls`` (as ``@dataclasses.dataclass(frozen=True)``)."""
    own = {name for name in ("__eq__", "__hash__", "__repr__") if name in cls.__dict__}
    made = dataclasses.dataclass(frozen=True, eq=False, repr=False)(cls)
    fields = dataclasses.fields(made)  # type: ignore[arg-type]
    setattr(made, _COMPARED, tuple(f.name for f in fields if f.compare))
    setattr(
        made, _HASHED, tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
    )
    setattr(made, _SHOWN, tuple(f.name for f in fields if f.repr))
    for name, method in (("__eq__", _eq), ("__hash__", _hash), ("__repr__", _repr)):
        if name not in own:
            setattr(made, name, method)
    return made


def _values(obj: Any, names: str) -> tuple[Any, ...]:
    return tuple(getattr(obj, name) for name in getattr(type(obj), names))


def _eq(self: Any, other: object) -> object:  # bool, or NotImplemented
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self, _COMPARED) == _values(other, _COMPARED)


def _hash(self: Any) -> int:
    return hash(_values(self, _HASHED))


def _repr(self: Any) -> str:
    shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in getattr(type(self), _SHOWN))
    return f"{type(self).__qualname__}({shown})"
