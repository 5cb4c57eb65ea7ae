"""The HTTP surface: the FastAPI app, its dependencies, middleware, error responses, routes.

:func:`cyberian.server.http.app.create_app` builds the app;
:func:`cyberian.server.http.runner.serve` runs it under uvicorn. Request
bodies are validated here (:mod:`.schemas`); everything they ask for is
decided by the domain modules of :mod:`cyberian.server`, whose errors
:mod:`.errors` turns into responses.
"""
