"""Serving: prepare the data dir, start the engine worker and Daphne; and fetching a model.

`medserver_site.cli` parses the flags and calls `serve` (or `download`).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
from pathlib import Path

from inference.registry import MODELS
from medserver_site import __version__
from medserver_site.config import ServerConfig

log = logging.getLogger("medserver")

PROXY_HEADERS = {
    "proxy_forwarded_address_header": "X-Forwarded-For",
    "proxy_forwarded_port_header": "X-Forwarded-Port",
    "proxy_forwarded_proto_header": "X-Forwarded-Proto",
}

WORKERS_NOTE = (
    "--workers {n}: MedServer serves every clinician from one process, because that "
    "process owns the model and its GPU memory and more processes would each load the "
    "model again. Requests are handled concurrently inside it; serving with 1 worker."
)


def download(model: str, hf_token: str, target: Path | None) -> None:
    """Fetch a hub model's files and say where they are; exit 1 with one line if that fails."""
    from inference.model_files import ModelFilesError, download_model

    spec = MODELS[model]
    where = target.expanduser().resolve() if target else None
    signal.signal(signal.SIGINT, _stop_download)
    print(f"Downloading {spec.label} ({spec.hf_id}, {spec.size}).", flush=True)
    try:
        folder = download_model(spec.hf_id, hf_token or None, where)
    except ModelFilesError as error:
        sys.exit(f"medserver: error: {error}")
    print(f"{spec.label} is in {folder}")
    served_as = folder if where else model
    print(f"Serve it with: medserver -m {served_as}")


def _stop_download(signum: int, frame: object) -> None:
    """Ctrl-C: stop at once, without waiting for the download threads to notice.

    What they fetched stays on disk, and the next run resumes from there.
    """
    print("\nmedserver: download stopped; run the same command to resume.", file=sys.stderr)
    sys.stderr.flush()
    os._exit(130)


def serve(config: ServerConfig) -> None:
    """Prepare the database and the static files, start the engine worker and serve on
    Daphne until stopped."""
    _check_port_free(config.host, config.port)
    os.environ.update(config.to_environ())
    os.environ["DJANGO_SETTINGS_MODULE"] = "medserver_site.settings"

    import daphne.server  # installs Twisted's asyncio reactor before anything else can
    import django

    django.setup()

    if config.workers > 1:
        log.warning(WORKERS_NOTE.format(n=config.workers))
    from lifecycle.errors import LifecycleError
    from lifecycle.upgrade import migrate_with_backup

    try:
        upgrade_backup = migrate_with_backup(config.data_dir, keep=config.upgrade_backups)
    except LifecycleError as error:
        sys.exit(f"medserver: error: {error}")
    if upgrade_backup is not None:
        print(f"Backed up the data before migrating it: {upgrade_backup}", flush=True)

    from audit import guard
    from chat import attachment_files, services
    from inference.worker import start_engine_worker, stop_engine_worker
    from lifecycle.retention import retention_start
    from medserver_site import http_server, metrics, static_files

    http_server.prepare()

    static_files.collect()
    guard.install()  # a migration that rebuilt the audit table drops them
    removed = attachment_files.remove_stale_uploads()
    if removed:
        log.info("%d image(s) uploaded over a day ago and never sent were removed", removed)

    interrupted = services.answers_mark_interrupted()
    if interrupted:
        log.warning(
            "%d answer(s) cut off by the last shutdown were marked as interrupted", interrupted
        )
    metrics.install(start_engine_worker(config.engine_config()))
    retention = retention_start(config.retention_days)
    # Built here: the database is not for the server's loop thread.
    banner = _banner(config)

    from daphne.endpoints import build_endpoint_description_strings

    from medserver_site import request_bodies
    from medserver_site.asgi import application

    server = daphne.server.Server(
        application=application,
        endpoints=_endpoints(config, build_endpoint_description_strings),
        ready_callable=lambda: print(banner, flush=True),
        verbosity=0,
        websocket_max_message_size=config.max_payload_bytes + 65536,
        **(PROXY_HEADERS if config.behind_proxy else {}),
    )
    request_bodies.install(server, config)
    try:
        server.run()
    finally:
        if retention is not None:
            retention.stop()
        stop_engine_worker()


def _endpoints(config: ServerConfig, plain_endpoints) -> list[str]:
    """Daphne's endpoint: plain TCP, or TLS with the given certificate and key."""
    if not config.tls:
        return plain_endpoints(host=config.host, port=config.port)

    def escaped(value: str) -> str:  # Twisted's endpoint syntax escapes ':' and '\\'
        return value.replace("\\", "\\\\").replace(":", "\\:")

    return [
        f"ssl:port={config.port}:interface={escaped(config.host)}"
        f":privateKey={escaped(config.ssl_keyfile)}:certKey={escaped(config.ssl_certfile)}"
    ]


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            reason = error.strerror or str(error)
            sys.exit(f"medserver: error: cannot listen on {host}:{port}: {reason.lower()}")


def _banner(config: ServerConfig) -> str:
    from django.contrib.auth.models import User

    from chat.setup_link import setup_path
    from inference.engine_select import planned_engine
    from inference.model_files import describe_source
    from inference.registry import model_spec_for
    from medserver_site.network import urls_to_open

    spec = model_spec_for(config.model)
    urls = urls_to_open(config.host, config.port, https=config.tls)
    lines = [
        f"MedServer {__version__} is serving {spec.label}.",
        f"Model files: {describe_source(spec, config.data_dir)}",
    ]
    # One story of who connects where: --no-auth and --behind-proxy never go together.
    if config.behind_proxy:
        lines += [
            "Behind a reverse proxy: open the proxy's address in a browser; clients' "
            "addresses and https come from its X-Forwarded-For/-Proto/-Port headers.",
            f"MedServer itself listens on {urls[0]} (for the proxy).",
        ]
    elif config.no_auth:
        lines += [
            "No sign-in (--no-auth): only this machine can connect. Open it here:",
            *(f"    {url}" for url in urls),
        ]
    else:
        lines += ["Open it in a browser on this network:", *(f"    {url}" for url in urls)]
    lines.append(planned_engine(config.engine_config()))
    lines.append(
        "The model loads in the background; /api/health says when it is ready "
        "and which engine serves it."
    )
    if not config.no_auth and not User.objects.exists():
        where = " (or this path at the proxy's address)" if config.behind_proxy else ""
        lines += [
            f"No account exists yet. Create the administrator here{where} (this link works once):",
            f"    {urls[0].rstrip('/')}{setup_path()}",
        ]
    return "\n".join(lines)
