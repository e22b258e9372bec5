"""Static asset URLs carrying a content hash, so browsers may cache them for a year."""

from __future__ import annotations

import hashlib
from pathlib import Path


class AssetManifest:
    """Hashes every file under ``root`` once at start-up."""

    def __init__(self, root: Path, url_prefix: str = "/static") -> None:
        self._prefix = url_prefix.rstrip("/")
        self._versions = {
            path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            for path in root.rglob("*")
            if path.is_file()
        }

    def url(self, path: str) -> str:
        version = self._versions.get(path)
        if version is None:
            raise KeyError(f"no static asset {path!r}")
        return f"{self._prefix}/{path}?v={version}"
