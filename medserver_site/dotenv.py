"""Read `.env` files the way the original tool did (HF_TOKEN=... beside the project)."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import find_dotenv, load_dotenv


def load_env_files(project_dir: Path) -> None:
    """Load `.env` from the working directory, then from the project folder.

    Variables already in the environment win, so a flag or an exported
    variable always overrides what a file says.
    """
    for path in (find_dotenv(usecwd=True), project_dir / ".env"):
        if path and Path(path).is_file() and os.access(path, os.R_OK):
            # Another account's owner-only .env (the installer's) is not ours to read.
            load_dotenv(path, override=False)
