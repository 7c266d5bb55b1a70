"""`sveta serve`: the REST API and the web page on one port, with the background sync of registered sources."""

from __future__ import annotations

import typer

from sveta.cli._common import console, settings


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
) -> None:
    """Serve the web page at / and the API at /api (OpenAPI at /docs) until stopped with Ctrl-C."""
    run_server(host, port)


def run_server(host: str, port: int) -> None:
    import uvicorn

    from sveta.api.app import create_app

    app = create_app(settings())
    every = settings().sync_every
    console.print(f"sveta on http://{host}:{port}/ (API docs: /docs; sync: {every or 'off'}); stop with Ctrl-C")
    # the rate limit counts per client: the proxy's X-Forwarded-For names it when the proxy is trusted
    uvicorn.run(app, host=host, port=port, log_level="warning", forwarded_allow_ips=settings().trusted_proxies)
