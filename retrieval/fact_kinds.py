"""Which KG facts recall treats apart: long descriptions, and the facts a comment can state.

A fact's value can be told apart in a comment unless it is only another name of its head
(an alias relation), a long description, or a value of one character (``男``, a digit): those
match comments that state nothing. The linker ranks with this rule and
:mod:`retrieval.stated` defines "knowledge-bearing" with it, so it sits below both.
"""

from __future__ import annotations

from kg.triples import ALIAS_RELATIONS

LONG_TEXT_RELATIONS = frozenset({"Information", "描述", "简介"})
MIN_VALUE_CHARS = 2


def stateable(relation: str, tail: str) -> bool:
    """Whether a fact's value can be told apart in a comment (see the module docstring)."""
    return (
        relation not in ALIAS_RELATIONS
        and relation not in LONG_TEXT_RELATIONS
        and len(tail.strip()) >= MIN_VALUE_CHARS
    )
