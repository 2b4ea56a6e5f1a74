"""Export of a loaded knowledge graph to RDF (Turtle or N-Triples), streamed.

Entities become IRIs in the project's namespace (``urn:danmaku-kg:entity:<percent-encoded
name>``), relations IRIs in ``urn:danmaku-kg:relation:``; a tail that is also a head becomes
an entity IRI (looked up a thousand facts at a time), any other tail a plain literal.
:func:`kg.sources.read_rdf` reads these IRIs back to the exact names, so export followed
by ``kg.load --kg rdf`` round-trips the facts.
Both formats are written one statement per line with full IRIs (valid Turtle and N-Triples),
so export needs no in-memory graph at any size.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from urllib.parse import quote

from rdflib import Literal, URIRef

from common.atomic import atomic_open
from kg.sources import ENTITY_NS, RELATION_NS, rdf_format
from kg.store import GraphStore
from kg.triples import KGError


def entity_iri(name: str) -> URIRef:
    return URIRef(ENTITY_NS + quote(name, safe=""))


def relation_iri(name: str) -> URIRef:
    return URIRef(RELATION_NS + quote(name, safe=""))


def _chunks(items: Iterator, size: int) -> Iterator[list]:
    while chunk := list(islice(items, size)):
        yield chunk


def export_rdf(store: GraphStore, path: str | Path) -> int:
    """Write every fact of ``store`` to ``path`` (``.ttl`` or ``.nt``); returns the count."""
    path = Path(path)
    fmt = rdf_format(path)
    if fmt not in ("nt", "turtle"):
        raise KGError(f"{path}: export writes Turtle (.ttl) or N-Triples (.nt), not {fmt}")
    n = 0
    with atomic_open(path, "w") as f:  # never leave a half-written export under the final name
        for chunk in _chunks(store.iter_facts(), 1000):
            heads = store.heads_among([fact.tail for fact in chunk])
            for fact in chunk:
                tail = entity_iri(fact.tail) if fact.tail in heads else Literal(fact.tail)
                head, rel = entity_iri(fact.head).n3(), relation_iri(fact.relation).n3()
                f.write(f"{head} {rel} {tail.n3()} .\n")
            n += len(chunk)
    return n
