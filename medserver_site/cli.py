"""`medserver`: parse the flags, prepare the database, start the model, serve on Daphne.

`medserver download -m 4` fetches a model's weights ahead of time instead;
`medserver backup` and `medserver restore` copy the data dir out and back (lifecycle).
Serving itself is in medserver_site.serve. The module is long for a reason: the
flag table is one entry per option, with the help a hospital's IT admin reads.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from inference.registry import MODELS
from medserver_site import __version__, lifecycle_cli
from medserver_site.config import ServerConfig
from medserver_site.dotenv import load_env_files
from medserver_site.serve import download, serve

PROJECT_DIR = Path(__file__).resolve().parent.parent
log = logging.getLogger("medserver")

USAGE = """medserver -m MODEL [-p PORT] [-ip HOST] [-q] [options]
       medserver download -m {4,27,27t} [--hf-token TOKEN] [--to FOLDER]
       medserver backup --to FILE [--data-dir DIR] [--encrypt | --passphrase-file FILE]
       medserver restore FILE [--data-dir DIR] [--force] [--passphrase-file FILE]"""


# Daphne takes the client's address, port and scheme from these headers when
# told to; only a reverse proxy in front of MedServer may be trusted with them.
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
    data_dir = _checked(ServerConfig.__dataclass_fields__["data_dir"].metadata["parse"])
    lifecycle_cli.add_commands(commands, data_dir_type=data_dir, formatter=_HelpFormatter)
    return parser


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
        # Options without a flag (host names, secret key, debug) come from the environment.
        unflagged = {
            ServerConfig.env_name(f.name)
            for f in dataclasses.fields(ServerConfig)
            if not hasattr(args, f.name)
        }
        values = ServerConfig.from_environ({k: v for k, v in os.environ.items() if k in unflagged})
        return dataclasses.replace(
            values,
            **{
                f.name: getattr(args, f.name)
                for f in dataclasses.fields(ServerConfig)
                if hasattr(args, f.name)
            },
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
    if args.command in lifecycle_cli.COMMANDS:
        lifecycle_cli.run(args)
        return
    serve(server_config(args))


if __name__ == "__main__":
    main()
