"""``orch.record``: a record behaves as ``dataclasses.dataclass(frozen=True)`` would, with
``__eq__``, ``__hash__`` and ``__repr__`` shared instead of compiled per class. Each case
is checked against a twin class made by dataclasses itself."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from orch.record import record


def twins(body: dict[str, Any], annotations: dict[str, str]) -> tuple[type, type]:
    """The same class made both ways."""
    made = []
    for decorate in (record, dataclasses.dataclass(frozen=True)):
        ns = {"__annotations__": dict(annotations), "__doc__": "a twin", **body}
        made.append(decorate(type("Twin", (), ns)))
    return made[0], made[1]


FIELDS = {"a": "int", "b": "str", "c": "list[int]", "d": "float", "e": "int"}
BODY = {
    "b": "x",
    "c": dataclasses.field(default_factory=list, compare=False, hash=False),
    "d": dataclasses.field(default=0.5, repr=False),
    "e": dataclasses.field(default=7, hash=False),
}


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ({"a": 1}, {"a": 1}),
        ({"a": 1}, {"a": 2}),
        ({"a": 1, "c": [1]}, {"a": 1, "c": [2]}),  # not compared
        ({"a": 1, "d": 0.1}, {"a": 1, "d": 0.2}),  # compared though not shown
        ({"a": 1, "e": 1}, {"a": 1, "e": 2}),  # compared though not hashed
        ({"a": 1, "b": "y"}, {"a": 1, "b": "z"}),
    ],
)
def test_equality_hash_and_repr_are_the_generated_ones(
    left: dict[str, Any], right: dict[str, Any]
) -> None:
    ours, theirs = twins(BODY, FIELDS)
    a, b, ta, tb = ours(**left), ours(**right), theirs(**left), theirs(**right)
    assert (a == b) == (ta == tb)
    assert (a != b) == (ta != tb)
    assert (hash(a), hash(b)) == (hash(ta), hash(tb))
    assert repr(a) == repr(ta)
    assert dataclasses.asdict(a) == dataclasses.asdict(ta)


def test_a_record_is_frozen_and_still_a_dataclass() -> None:
    ours, _ = twins(BODY, FIELDS)
    one = ours(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        one.a = 2  # type: ignore[attr-defined]
    assert dataclasses.is_dataclass(one)
    assert dataclasses.replace(one, a=3) == ours(3)
    assert [f.name for f in dataclasses.fields(one)] == list(FIELDS)
    assert one != (1, "x") and (one == object()) is False


def test_another_class_is_never_equal_and_a_subclass_compares_its_own_fields() -> None:
    @record
    class Base:
        """a base"""

        a: int

    @record
    class Child(Base):
        """a child"""

        b: int = 0

    assert Base(1) != Child(1, 0) and Child(1, 0) == Child(1, 0) and Child(1, 0) != Child(1, 1)
    assert repr(Child(1, 2)).endswith(".<locals>.Child(a=1, b=2)")
    assert hash(Child(1, 2)) == hash((1, 2))


def test_a_class_keeps_the_methods_it_defines() -> None:
    @record
    class Named:
        """keeps its repr"""

        a: int

        def __repr__(self) -> str:
            return f"<{self.a}>"

    assert repr(Named(1)) == "<1>" and Named(1) == Named(1)


def test_an_unhashable_field_makes_the_record_unhashable_as_dataclasses_would() -> None:
    ours, theirs = twins({}, {"a": "list[int]"})
    with pytest.raises(TypeError):
        hash(ours([1]))
    with pytest.raises(TypeError):
        hash(theirs([1]))
