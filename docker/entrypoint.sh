#!/bin/sh
# The images' entrypoint: run the command given (default: the inspection API) after deriving
# NEO4J_USER and NEO4J_PASSWORD from NEO4J_AUTH ("user/password", the variable the neo4j image
# reads), so one env file (docker/neo4j.env) serves the Neo4j server and its clients. Variables
# already set win; NEO4J_AUTH=none sets nothing.
set -eu
if [ -n "${NEO4J_AUTH:-}" ] && [ "${NEO4J_AUTH}" != "none" ]; then
    case "${NEO4J_AUTH}" in
        */*) ;;
        *)
            echo "entrypoint: NEO4J_AUTH must be user/password (or none)" >&2
            exit 2
            ;;
    esac
    NEO4J_USER="${NEO4J_USER:-${NEO4J_AUTH%%/*}}"
    NEO4J_PASSWORD="${NEO4J_PASSWORD:-${NEO4J_AUTH#*/}}"
    export NEO4J_USER NEO4J_PASSWORD
fi
exec "$@"
