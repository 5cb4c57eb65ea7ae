"""The self-hosted coordinator: the verifier HTTP API (see ``docs/SERVER.md``).

``cyberian.server.app.create_app(settings)`` builds the FastAPI app for a
``cyberian.server.config.Settings``; ``cyberian.server.runner.serve`` runs it
with uvicorn (what ``cyberian serve`` does). The package itself imports
nothing heavy, so the admin commands start fast.
"""
