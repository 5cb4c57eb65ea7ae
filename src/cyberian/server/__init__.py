"""The self-hosted coordinator: the verifier HTTP API (see ``docs/SERVER.md``).

Layers, from the outside in:

* :mod:`.http` -- the HTTP surface: ``cyberian.server.http.app.create_app(settings)``
  builds the FastAPI app, ``cyberian.server.http.runner.serve`` runs it with
  uvicorn (what ``cyberian serve`` does); routes, dependencies, middleware,
  request schemas, and the one place errors become responses;
* the domain modules right here (accounts, auth, quotas, jobs, pipeline, vaas,
  idempotency, uploads, catalog, model_resolver, signer, ...), which decide
  and raise :mod:`.errors` that know nothing of the web framework;
* :mod:`.store` -- every SQL statement and the content-addressed model files;
* :mod:`.workers` -- the executor and replayer processes and what runs in them.

:mod:`.wiring` builds and connects all of it at startup; :mod:`.config` holds
the :class:`~cyberian.server.config.Settings`. The package itself imports
nothing heavy, so the admin commands start fast.
"""
