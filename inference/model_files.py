"""Where a model's files come from: the demo builder, a local folder, or the hub."""

from __future__ import annotations

import logging
from pathlib import Path

from inference.engine import EngineError
from inference.registry import ModelSpec

log = logging.getLogger(__name__)


def locate_model(spec: ModelSpec, data_dir: Path, hf_token: str = "") -> Path:
    """Return a folder holding the model's files, downloading them if needed.

    Raise EngineError with a message a person can act on when the files
    cannot be had (gated model without access, no network and no cache).
    """
    if spec.key == "demo":
        from inference.demo_model import ensure_demo_model

        return ensure_demo_model(data_dir / "models" / "demo")
    if spec.local_path is not None:
        return spec.local_path
    return _from_hub(spec.hf_id, hf_token or None)


def _from_hub(repo_id: str, token: str | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        # The cache first: a server that restarts must not need the network.
        return Path(snapshot_download(repo_id, token=token, local_files_only=True))
    except LocalEntryNotFoundError:
        log.info("%s is not in the local cache; downloading it", repo_id)
    try:
        return Path(snapshot_download(repo_id, token=token))
    except GatedRepoError:
        raise EngineError(
            f"{repo_id} is a gated model: accept its licence at "
            f"https://huggingface.co/{repo_id} with your account, then pass --hf-token "
            "(or set HF_TOKEN in .env)."
        ) from None
    except RepositoryNotFoundError:
        hint = "" if token else " If it is gated, pass --hf-token."
        raise EngineError(f"{repo_id} was not found on the Hugging Face hub.{hint}") from None
    except LocalEntryNotFoundError:
        raise EngineError(
            f"Cannot reach the Hugging Face hub and {repo_id} is not in the local cache. "
            "Download it on a connected machine, or serve a copied model folder with -m PATH."
        ) from None
    except OSError as error:
        raise EngineError(f"Could not download {repo_id}: {error.strerror or error}") from None
