"""The pytest the sandbox runs: pytest + pytest-timeout (and what they require) copied from
this environment into a world-readable, read-only-mounted directory.

Why not the repository's own pytest: the QA run needs flags it controls (JUnit, per-test
timeouts) on a known version; the repository's dependencies come on top (dependencies.py).
The copy is cached by the distributions' names and versions.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Final

from packaging.markers import default_environment
from packaging.requirements import Requirement

from prtrace.qa.shared_dirs import shared_dir

RUNNER_DISTRIBUTIONS: Final = ("pytest", "pytest-timeout")


def cache_root(configured: Path | None = None) -> Path:
    """Shared with the sandbox user, so it must be world-traversable: /var/cache when root,
    the user's cache otherwise. `configured` (QASettings.cache_dir) overrides."""
    if configured is not None:
        return configured
    if os.geteuid() == 0:
        return Path("/var/cache/prtrace/qa")
    return Path.home() / ".cache" / "prtrace" / "qa"


def distribution_closure(names: tuple[str, ...]) -> list[metadata.Distribution]:
    """The named distributions and everything they require in this environment."""
    environment = {k: str(v) for k, v in default_environment().items()} | {"extra": ""}
    seen: dict[str, metadata.Distribution] = {}
    pending = list(names)
    while pending:
        name = pending.pop().lower().replace("_", "-")
        if name in seen:
            continue
        dist = metadata.distribution(name)
        seen[name] = dist
        for spec in dist.requires or []:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                pending.append(requirement.name)
    return sorted(seen.values(), key=lambda d: d.metadata["Name"].lower())


def copy_distributions(dists: list[metadata.Distribution], dest: Path) -> None:
    """Copy the distributions' installed files into `dest`, readable by every uid."""
    for dist in dists:
        for file in dist.files or []:
            if file.suffix == ".pyc" or ".." in file.parts or str(file).startswith("/"):
                continue  # compiled caches, and the console scripts installed in bin/
            source = Path(str(dist.locate_file(file)))
            if not source.is_file():
                continue
            destination = dest / file
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
    for directory, _, files in os.walk(dest):
        os.chmod(directory, 0o755)  # noqa: S103
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)


def build_runner_site(root: Path | None = None) -> Path:
    """The cached runner site directory (built on first use) under the QA cache directory
    `root` (QASettings.cache_dir; None: cache_root's default)."""
    dists = distribution_closure(RUNNER_DISTRIBUTIONS)
    fingerprint = hashlib.sha256(
        "\n".join(f"{d.metadata['Name']}=={d.version}" for d in dists).encode()
    ).hexdigest()[:16]
    base = cache_root(root)
    target = base / f"runner-{fingerprint}"
    if target.is_dir():
        return target
    shared_dir(base)  # the sandbox uid reads it
    staging = Path(tempfile.mkdtemp(dir=base, prefix=".runner-"))
    copy_distributions(dists, staging)
    try:
        staging.rename(target)
    except OSError:  # built concurrently by another run: use theirs
        shutil.rmtree(staging, ignore_errors=True)
    return target
