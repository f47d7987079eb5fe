"""What rendering produces: a file's text, whether it holds a secret (then mode 0600, else
what the user's umask allows), and
whether it is a Kubernetes Secret that the workspace writes SOPS-encrypted for Flux."""

from __future__ import annotations

from dataclasses import dataclass

from generator.fileio import PUBLIC_MODE


@dataclass(frozen=True)
class RenderedFile:
    text: str
    secret: bool = False
    # Plain YAML of a Kubernetes Secret: workspace encrypts its data/stringData with SOPS
    # before it touches the disk (render stays pure: encryption is random), so once
    # written it is safe to track in git.
    sops: bool = False

    @property
    def mode(self) -> int:
        return 0o600 if self.secret and not self.sops else PUBLIC_MODE
