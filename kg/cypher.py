"""Every Cypher statement :class:`kg.neo4j_store.Neo4jStore` runs, as constants.

Parameterised only (``$name``): no user text is ever formatted into a query. The graph:
``(:Entity {name})-[:REL {name}]->(:Entity)`` for facts (one relationship type with the
relation as a property, because Cypher cannot parameterise a relationship type),
``(:Alias {name})-[:ALIAS_OF]->(:Entity)`` for alias names and ``(:LoadState {source})`` for
resumable loads. The same statements run on Neo4j 5 and on ArcadeDB's Bolt server (tests).
"""

CONSTRAINTS = (
    "CREATE CONSTRAINT entity_name IF NOT EXISTS FOR (e:Entity) REQUIRE e.name IS UNIQUE",
    "CREATE CONSTRAINT alias_name IF NOT EXISTS FOR (a:Alias) REQUIRE a.name IS UNIQUE",
    "CREATE CONSTRAINT load_source IF NOT EXISTS FOR (s:LoadState) REQUIRE s.source IS UNIQUE",
)

# Batched upserts: one round trip per batch. Each returns how many rows it created.
MERGE_ENTITIES = """
UNWIND $names AS name
MERGE (e:Entity {name: name})
"""
MERGE_TRIPLES = """
UNWIND $rows AS row
MATCH (h:Entity {name: row.h})
MATCH (t:Entity {name: row.t})
MERGE (h)-[r:REL {name: row.r}]->(t)
"""
MERGE_ALIASES = """
UNWIND $rows AS row
MATCH (e:Entity {name: row.head})
MERGE (a:Alias {name: row.alias})
MERGE (a)-[:ALIAS_OF]->(e)
"""
SET_LOAD_STATE = """
MERGE (s:LoadState {source: $source})
SET s.records_done = $records_done, s.complete = $complete
"""
GET_LOAD_STATE = (
    "MATCH (s:LoadState {source: $source}) RETURN s.records_done AS n, s.complete AS complete"
)

COUNT_ENTITIES = "MATCH (e:Entity) RETURN count(e) AS n"
COUNT_TRIPLES = "MATCH (:Entity)-[r:REL]->(:Entity) RETURN count(r) AS n"
COUNT_RELATIONS = "MATCH (:Entity)-[r:REL]->(:Entity) RETURN count(DISTINCT r.name) AS n"
COUNT_ALIASES = "MATCH (:Alias)-[a:ALIAS_OF]->(:Entity) RETURN count(a) AS n"

# A head has facts of its own: the pointers of a disambiguation page ($disambiguation) do
# not count.
HEAD_NAMED = """
MATCH (e:Entity {name: $name})-[r:REL]->() WHERE NOT r.name IN $disambiguation
RETURN e.name AS name LIMIT 1
"""
ENTITY_NAMED = "MATCH (e:Entity {name: $name}) RETURN e.name AS name LIMIT 1"
ALIAS_TARGETS = """
MATCH (:Alias {name: $name})-[:ALIAS_OF]->(e:Entity)
OPTIONAL MATCH (e)-[r:REL]->()
RETURN e.name AS name, count(r) AS facts
"""
ALIASES_OF = "MATCH (a:Alias)-[:ALIAS_OF]->(:Entity {name: $name}) RETURN a.name AS name"

FACTS = """
MATCH (e:Entity {name: $name})-[r:REL]->(t:Entity)
RETURN e.name AS head, r.name AS relation, t.name AS tail
ORDER BY relation, tail SKIP $offset LIMIT $limit
"""
FACTS_OF_RELATIONS = """
MATCH (e:Entity {name: $name})-[r:REL]->(t:Entity)
WHERE r.name IN $relations
RETURN e.name AS head, r.name AS relation, t.name AS tail
ORDER BY relation, tail SKIP $offset LIMIT $limit
"""
FACTS_INTO = """
MATCH (h:Entity)-[r:REL]->(e:Entity) WHERE e.name IN $names
RETURN h.name AS head, r.name AS relation, e.name AS tail
ORDER BY head, relation LIMIT $limit
"""
SEARCH_HEADS = """
MATCH (e:Entity)-[:REL]->()
WHERE e.name STARTS WITH $prefix
RETURN DISTINCT e.name AS name ORDER BY name LIMIT $limit
"""
SEARCH_ALIASES = """
MATCH (a:Alias) WHERE a.name STARTS WITH $prefix
RETURN a.name AS name ORDER BY name LIMIT $limit
"""
ALL_HEADS = """
MATCH (e:Entity) WHERE EXISTS { MATCH (e)-[r:REL]->() WHERE NOT r.name IN $disambiguation }
RETURN e.name AS name
"""
ALL_ALIASES = "MATCH (a:Alias) RETURN a.name AS name ORDER BY name"
HEADS_AMONG = """
UNWIND $names AS name
MATCH (e:Entity {name: name})
WHERE EXISTS { MATCH (e)-[r:REL]->() WHERE NOT r.name IN $disambiguation }
RETURN e.name AS name
"""
ALL_FACTS = """
MATCH (h:Entity)-[r:REL]->(t:Entity)
RETURN h.name AS head, r.name AS relation, t.name AS tail
"""
