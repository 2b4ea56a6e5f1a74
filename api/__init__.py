"""Read-only knowledge-inspection REST API and web inspector (docs/architecture.md, section "API").

python -m api [--host 127.0.0.1] [--port 8000]
"""
