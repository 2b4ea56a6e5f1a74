"""Read-only knowledge-inspection REST API and web inspector (DESIGN.md section 7).

python -m api [--host 127.0.0.1] [--port 8000]
"""
