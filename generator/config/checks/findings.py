"""What the checks collect: problems (the config is refused) and warnings."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def error(self, where: str, what: str, hint: str) -> None:
        self.problems.append(f"{where}: {what} ({hint})")

    def warn(self, where: str, what: str, hint: str) -> None:
        self.warnings.append(f"{where}: {what} ({hint})")
