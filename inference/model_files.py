"""Where a model's files come from: the demo builder, a local folder, or the hub."""

from __future__ import annotations

import logging
from pathlib import Path

from inference.engine import EngineError
from inference.registry import ModelSpec

log = logging.getLogger(__name__)


class ModelFilesError(EngineError):
    """The model's files cannot be had; the text says why, on one line, and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


def locate_model(spec: ModelSpec, data_dir: Path, hf_token: str = "") -> Path:
    """Return a folder holding the model's files, downloading them if needed.

    Raise ModelFilesError with a message a person can act on when the files
    cannot be had (gated model without access, no network and no cache).
    """
    if spec.key == "demo":
        from inference.demo_model import ensure_demo_model

        return ensure_demo_model(demo_model_dir(data_dir))
    if spec.local_path is not None:
        return spec.local_path
    return _from_hub(spec.hf_id, hf_token or None)


def local_model(spec: ModelSpec, data_dir: Path) -> Path | None:
    """Return a folder with the model's files if this machine has them, else None.

    Never downloads: a remote engine serves the model, and MedServer only
    wants its tokenizer and template when they are already here (the demo
    model is built, which takes no network).
    """
    if spec.key == "demo" or spec.local_path is not None:
        return locate_model(spec, data_dir)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(spec.hf_id, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None


def demo_model_dir(data_dir: Path) -> Path:
    """The folder the demo model is built in."""
    return data_dir / "models" / "demo"


def describe_source(spec: ModelSpec, data_dir: Path) -> str:
    """Say in words where `spec`'s files will be read from, for the start banner."""
    if spec.key == "demo":
        return f"built locally in {demo_model_dir(data_dir)} (no download)"
    if spec.local_path is not None:
        return f"the local folder {spec.local_path}"
    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(spec.hf_id, "config.json"), str):
        return f"{spec.hf_id}, from the Hugging Face cache in {constants.HF_HUB_CACHE}"
    return (
        f"{spec.hf_id}, not in the Hugging Face cache yet: it downloads first ({spec.size}; "
        f"'medserver download -m {spec.key}' fetches it ahead, with a progress bar)"
    )


def download_model(repo_id: str, token: str | None, target: Path | None = None) -> Path:
    """Fetch every file of `repo_id` from the hub and return the folder holding them.

    The files go to the Hugging Face cache, or into `target` when given. A
    download that was cut off resumes where it stopped; files already there are
    not fetched again. Raise ModelFilesError when the files cannot be had.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import enable_progress_bars

    # Loading bars are off for the server's log (transformers_engine), but a
    # download of many gigabytes shows its progress.
    enable_progress_bars()
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        return Path(snapshot_download(repo_id, token=token, local_dir=target))
    except GatedRepoError:
        raise ModelFilesError(
            f"{repo_id} is a gated model: accept its licence at "
            f"https://huggingface.co/{repo_id} with your account, then pass --hf-token "
            "(or set HF_TOKEN in .env)."
        ) from None
    except RepositoryNotFoundError:
        hint = "" if token else " If it is gated, pass --hf-token (or set HF_TOKEN in .env)."
        raise ModelFilesError(f"{repo_id} was not found on the Hugging Face hub.{hint}") from None
    except LocalEntryNotFoundError:
        raise ModelFilesError(
            f"Cannot reach the Hugging Face hub and {repo_id} is not (fully) in the local cache. "
            "Fetch it on a connected machine (medserver download ... --to FOLDER), copy the "
            "folder here and serve it with -m FOLDER."
        ) from None
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "an error"
        if status == 401:
            raise ModelFilesError(
                f"The Hugging Face hub refused the token while fetching {repo_id} (401): "
                "check --hf-token or HF_TOKEN in .env."
            ) from None
        raise ModelFilesError(
            f"Could not download {repo_id}: the Hugging Face hub answered {status}."
        ) from None
    except OSError as error:
        raise ModelFilesError(f"Could not download {repo_id}: {error.strerror or error}") from None
    except Exception as error:  # a dropped connection, say: still one line, details in debug
        log.debug("Downloading %s failed", repo_id, exc_info=True)
        raise ModelFilesError(
            f"Could not download {repo_id} ({type(error).__name__}: {error}). "
            "Run the same command again to resume."
        ) from None


def _from_hub(repo_id: str, token: str | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        # The cache first: a server that restarts must not need the network.
        return Path(snapshot_download(repo_id, token=token, local_files_only=True))
    except LocalEntryNotFoundError:
        log.info("%s is not in the local cache; downloading it", repo_id)
    return download_model(repo_id, token)
