"""`medserver`: parse the flags, prepare the database, start the model, serve on Daphne.

`medserver download -m 4` fetches a model's weights ahead of time instead;
`medserver backup` and `medserver restore` copy the data dir out and back (lifecycle).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from inference.registry import MODELS
from medserver_site import __version__
from medserver_site.config import ServerConfig
from medserver_site.dotenv import load_env_files

PROJECT_DIR = Path(__file__).resolve().parent.parent
log = logging.getLogger("medserver")

USAGE = """medserver -m MODEL [-p PORT] [-ip HOST] [-q] [options]
       medserver download -m {4,27,27t} [--hf-token TOKEN] [--to FOLDER]
       medserver backup --to FILE [--data-dir DIR] [--encrypt | --passphrase-file FILE]
       medserver restore FILE [--data-dir DIR] [--force] [--passphrase-file FILE]"""

# Daphne takes the client's address, port and scheme from these headers when
# told to; only a reverse proxy in front of MedServer may be trusted with them.
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


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one clear line (no usage dump)."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False, argparse.SUPPRESS):
            return action.help or ""
        return super()._get_help_string(action)


def _checked(parse: Callable[[str], object]) -> Callable[[str], object]:
    """Adapt a config parser to argparse, keeping its own error message."""

    def convert(text: str) -> object:
        try:
            return parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    convert.__name__ = parse.__name__
    return convert


def parse_download_model(text: str) -> str:
    """Return the key of a model that comes from the hub (4, 27, 27t)."""
    key = text.strip()
    if key in MODELS and MODELS[key].hf_id:
        return key
    raise ValueError(
        f"cannot download {text!r}: use 4, 27 or 27t (the demo model is built on first use, "
        "and a model folder is already on disk)"
    )


def build_parser() -> OneLineParser:
    fields = {f.name: f for f in dataclasses.fields(ServerConfig)}
    defaults = ServerConfig()

    def typed(name: str) -> dict:
        return {
            "type": _checked(fields[name].metadata["parse"]),
            "default": getattr(defaults, name),
        }

    parser = OneLineParser(
        prog="medserver",
        usage=USAGE,
        description="Serve MedGemma to your clinic's network as a private clinical chat.",
        epilog="Example: medserver -m 4 -p 7070 -ip 192.168.1.50",
        formatter_class=_HelpFormatter,
    )
    add = parser.add_argument
    add(
        "-m",
        "--model",
        # Required when serving; checked in parse_args, since `download` has its own -m.
        default=None,
        type=_checked(fields["model"].metadata["parse"]),
        help="model to serve: 4 (MedGemma 1.5 4B), 27 (27B multimodal), 27t (27B text), "
        "demo (tiny built-in model, no GPU or download), or the path of a local model folder",
    )
    add("-p", "--port", **typed("port"), help="port to listen on")
    add("-ip", "--host", **typed("host"), help="address to bind (0.0.0.0: every interface)")
    add("-q", "--quantize", action="store_true", help="load 4-bit NF4 weights (NVIDIA GPU)")
    add("--force-transformers", action="store_true", help="never use SGLang")
    add("-v", "--version", action="version", version=f"%(prog)s {__version__}")
    add("--workers", **typed("workers"), help="kept for compatibility; MedServer uses 1")
    add(
        "--max-user-streams",
        **typed("max_user_streams"),
        help="answers one user may have generating at once",
    )
    add("--rate-limit", **typed("rate_limit"), help="requests per user")
    add(
        "--max-history-messages",
        **typed("max_history_messages"),
        help="messages in one chat",
    )
    add(
        "--max-text-length",
        **typed("max_text_length"),
        help="characters in one message",
    )
    add(
        "--max-image-count",
        **typed("max_image_count"),
        help="images in one message",
    )
    add(
        "--max-payload-mb",
        **typed("max_payload_mb"),
        help="size of one upload in MB",
    )
    add("--show-hardware-stats", action="store_true", help="show GPU facts in the page")
    add(
        "--hf-token",
        type=_checked(fields["hf_token"].metadata["parse"]),
        default=None,
        help="Hugging Face token for the gated MedGemma models (else $HF_TOKEN or .env)",
    )
    add(
        "--max-model-len",
        **typed("max_model_len"),
        help="context length in tokens",
    )
    add(
        "--max-new-tokens",
        **typed("max_new_tokens"),
        help="longest answer in tokens; 0 = the model's default",
    )
    add(
        "--gpu-memory-utilization",
        **typed("gpu_memory_utilization"),
        metavar="FRACTION",
        help="fraction of GPU memory SGLang may hold (weights and cache); "
        "default: SGLang's own choice, which leaves more room for vision models",
    )
    add(
        "--sglang-python",
        type=_checked(fields["sglang_python"].metadata["parse"]),
        default=os.environ.get("MEDSERVER_SGLANG_PYTHON", ""),
        metavar="PATH",
        help="the Python of an existing SGLang install, to run SGLang's server with "
        "($MEDSERVER_SGLANG_PYTHON if set; default: .venv-sglang/bin/python, made by install.sh)",
    )
    add("--log-level", **typed("log_level"), help="debug, info, warning or error")
    add(
        "--log-format",
        **typed("log_format"),
        help="text, or json: one JSON object per line, for a log collector",
    )
    add(
        "--metrics-token",
        type=_checked(fields["metrics_token"].metadata["parse"]),
        default=os.environ.get("MEDSERVER_METRICS_TOKEN", ""),
        help="serve Prometheus metrics at /metrics to this bearer token "
        "($MEDSERVER_METRICS_TOKEN if set)",
    )
    add(
        "--metrics-listen",
        **typed("metrics_listen"),
        help="also serve Prometheus metrics, without a token, on this HOST:PORT "
        "(an address only the monitoring network reaches)",
    )
    add(
        "--default-temperature",
        **typed("default_temperature"),
        help="sampling temperature",
    )
    add("--default-top-p", **typed("default_top_p"), help="top-p")
    add(
        "--allow-client-sampling-config",
        action=argparse.BooleanOptionalAction,
        default=defaults.allow_client_sampling_config,
        help="let API clients set temperature and top-p",
    )
    add(
        "--data-dir",
        type=_checked(fields["data_dir"].metadata["parse"]),
        default=os.environ.get("MEDSERVER_DATA_DIR") or defaults.data_dir,
        help="database, uploads and the demo model ($MEDSERVER_DATA_DIR if set)",
    )
    add(
        "--engine-url",
        **typed("engine_url"),
        help="use this OpenAI-compatible server (SGLang, vLLM) instead of loading the model here",
    )
    add(
        "--engine-api-key",
        type=_checked(fields["engine_api_key"].metadata["parse"]),
        default=os.environ.get("MEDSERVER_ENGINE_API_KEY", ""),
        help="API key for --engine-url ($MEDSERVER_ENGINE_API_KEY if set)",
    )
    add("--engine-model", **typed("engine_model"), help="model name at --engine-url")
    add(
        "--engine-max-concurrency",
        **typed("engine_max_concurrency"),
        help="answers sent at once to --engine-url or SGLang (their servers batch them)",
    )
    add("--max-batch-size", **typed("max_batch_size"), help="answers generated together")
    add(
        "--max-queued-requests",
        **typed("max_queued_requests"),
        help="answers waiting for a place beside those being written; more are refused as busy",
    )
    add(
        "--loop-guard",
        **typed("loop_guard"),
        help="stop an answer whose end repeats one passage this many times; 0 = off",
    )
    add(
        "--session-timeout",
        **typed("session_timeout"),
        help="minutes without activity after which a user is signed out",
    )
    add(
        "--time-zone",
        **typed("time_zone"),
        help="the clinic's time zone for times in the page, exports and admin, such as "
        "Europe/Berlin (default: the system's, from $TZ or /etc/localtime)",
    )
    add(
        "--no-auth",
        action="store_true",
        help="no sign-in (one local user); only with a loopback bind such as -ip 127.0.0.1",
    )
    add(
        "--ssl-certfile",
        **typed("ssl_certfile"),
        help="serve HTTPS with this certificate (PEM; with --ssl-keyfile)",
    )
    add("--ssl-keyfile", **typed("ssl_keyfile"), help="the certificate's private key (PEM)")
    add(
        "--behind-proxy",
        action="store_true",
        help="a reverse proxy (nginx) is in front: take each client's address and https "
        "from its X-Forwarded-For/-Proto/-Port headers. Bind to 127.0.0.1 with it, so "
        "that only the proxy can reach MedServer",
    )
    add(
        "--retention-days",
        **typed("retention_days"),
        help="delete chats idle for more than this many days, in a daily pass (reviewed "
        "chats and chats on hold are kept); 0 = keep every chat",
    )
    add(
        "--upgrade-backups",
        **typed("upgrade_backups"),
        help="before migrating the database at start, back up the data dir into its "
        "backups/ folder, keeping this many such backups; 0 = no backup",
    )
    commands = parser.add_subparsers(
        dest="command", title="commands", metavar="COMMAND", parser_class=OneLineParser
    )
    download = commands.add_parser(
        "download",
        prog="medserver download",
        help="fetch a model's weights ahead of time, then exit",
        description="Fetch a MedGemma model's weights from the Hugging Face hub, with a "
        "progress bar. A download that was cut off resumes where it stopped when run again.",
        epilog="Example: medserver download -m 4",
        formatter_class=_HelpFormatter,
    )
    download.add_argument(
        "-m",
        "--model",
        required=True,
        type=_checked(parse_download_model),
        help="model to fetch: 4 (MedGemma 1.5 4B), 27 (27B multimodal) or 27t (27B text)",
    )
    download.add_argument(
        "--hf-token",
        type=_checked(fields["hf_token"].metadata["parse"]),
        default=None,
        metavar="TOKEN",
        help="Hugging Face token for the gated MedGemma models (else $HF_TOKEN or .env)",
    )
    download.add_argument(
        "--to",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="put the files in this folder instead of the Hugging Face cache, e.g. to copy "
        "them to a machine without internet and serve them there with -m FOLDER",
    )
    _add_lifecycle_commands(commands)
    return parser


def _add_lifecycle_commands(commands) -> None:
    # SUPPRESS: without its own --data-dir, a command keeps the one given before it.
    data_dir = {
        "type": _checked(ServerConfig.__dataclass_fields__["data_dir"].metadata["parse"]),
        "default": argparse.SUPPRESS,
        "metavar": "DIR",
        "help": "the data dir (default: as when serving: $MEDSERVER_DATA_DIR or ~/.medserver)",
    }
    passphrase_file = {
        "type": Path,
        "default": None,
        "metavar": "FILE",
        "help": "read the passphrase from the first line of FILE (for scheduled backups)",
    }
    backup = commands.add_parser(
        "backup",
        prog="medserver backup",
        help="write the database, uploads and secret key to one archive, then exit",
        description="Back up a data dir into one archive, while MedServer serves: the "
        "database through SQLite's online backup API, every uploaded image, the secret key, "
        "the settings, and a manifest with each file's SHA-256.",
        epilog="Example: medserver backup --to /mnt/nas/medserver-2026-12-01.tar.gz",
        formatter_class=_HelpFormatter,
    )
    backup.add_argument("--to", required=True, type=Path, metavar="FILE", help="a new file")
    backup.add_argument("--data-dir", **data_dir)
    lock = backup.add_mutually_exclusive_group()
    lock.add_argument(
        "--encrypt", action="store_true", help="encrypt with a passphrase asked for here"
    )
    lock.add_argument("--passphrase-file", **passphrase_file)
    restore = commands.add_parser(
        "restore",
        prog="medserver restore",
        help="put a backup back into a data dir, then exit",
        description="Restore a backup into an empty data dir (or, with --force, over the "
        "data there). Every file is checked against the manifest first; a backup from an "
        "older MedServer is migrated, one from a newer MedServer refused. Stop MedServer "
        "before restoring into the data dir it serves.",
        epilog="Example: medserver restore /mnt/nas/medserver-2026-12-01.tar.gz",
        formatter_class=_HelpFormatter,
    )
    restore.add_argument("archive", type=Path, metavar="FILE", help="the backup to restore")
    restore.add_argument("--data-dir", **data_dir)
    restore.add_argument(
        "--force",
        action="store_true",
        help="replace the data dir's database, uploads and key (kept in its backups/ folder)",
    )
    restore.add_argument("--passphrase-file", **passphrase_file)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (after loading `.env`); exit with one line on a bad value."""
    load_env_files(PROJECT_DIR)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None and args.model is None:
        parser.error("the following arguments are required: -m/--model")
    if args.hf_token is None:
        args.hf_token = os.environ.get("HF_TOKEN", "").strip()
    return args


def server_config(args: argparse.Namespace) -> ServerConfig:
    """The ServerConfig that parsed serving flags describe; exit with one line if they clash."""
    if args.no_auth and getattr(args, "behind_proxy", False):
        # Behind a proxy every client arrives from the loopback address: the
        # loopback-only promise of --no-auth would hand the whole LAN the superuser.
        sys.exit(
            _exit_line(
                "medserver: error: --no-auth cannot be used with --behind-proxy: every client "
                "of the proxy would be signed in as the administrator"
            )
        )
    try:
        return ServerConfig(
            **{f.name: getattr(args, f.name) for f in dataclasses.fields(ServerConfig)}
        )
    except ValueError as error:
        sys.exit(_exit_line(f"medserver: error: {error}"))


def _exit_line(message: str) -> int:
    print(message, file=sys.stderr)
    return 2


def parse_config(argv: Sequence[str] | None = None) -> ServerConfig:
    """Parse a serving command line into a ServerConfig; exit with one line on a bad value."""
    return server_config(parse_args(argv))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "download":
        download(args.model, args.hf_token, args.to)
        return
    if args.command in ("backup", "restore"):
        from lifecycle import commands

        if args.command == "backup":
            commands.backup(
                data_dir=args.data_dir,
                target=args.to,
                passphrase_file=args.passphrase_file,
                encrypt=args.encrypt,
            )
        else:
            commands.restore_archive(
                archive=args.archive,
                data_dir=args.data_dir,
                force=args.force,
                passphrase_file=args.passphrase_file,
            )
        return
    serve(server_config(args), behind_proxy=args.behind_proxy)


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


def serve(config: ServerConfig, *, behind_proxy: bool = False) -> None:
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
    banner = _banner(config, behind_proxy=behind_proxy)

    from daphne.endpoints import build_endpoint_description_strings

    from medserver_site import request_bodies
    from medserver_site.asgi import application

    server = daphne.server.Server(
        application=application,
        endpoints=_endpoints(config, build_endpoint_description_strings),
        ready_callable=lambda: print(banner, flush=True),
        verbosity=0,
        websocket_max_message_size=config.max_payload_bytes + 65536,
        **(PROXY_HEADERS if behind_proxy else {}),
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


def _banner(config: ServerConfig, *, behind_proxy: bool = False) -> str:
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
    if behind_proxy:
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
        where = " (or this path at the proxy's address)" if behind_proxy else ""
        lines += [
            f"No account exists yet. Create the administrator here{where} (this link works once):",
            f"    {urls[0].rstrip('/')}{setup_path()}",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
