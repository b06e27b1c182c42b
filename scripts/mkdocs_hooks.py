"""mkdocs hooks (``hooks:`` in ``mkdocs.yml``): links from the docs to the rest of the repository.

The pages are read on GitHub as well as on the site, so they link to the README, notebooks and
benchmarks with relative paths (``../README.md``). Those files are not part of the site: each
such link becomes a link to the file in the repository (``repo_url``/blob/main/...). A link to
a file that does not exist is a warning, so ``mkdocs build --strict`` fails on it.
"""

from __future__ import annotations

import logging
import posixpath
import re
from pathlib import Path
from typing import Any

log = logging.getLogger("mkdocs.hooks.rxtweet")

# [text](target) outside code; the target has no scheme and climbs out of docs/.
LINK = re.compile(r"(\]\()(\.\./[^)#\s]+)((?:#[^)\s]*)?\))")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)


def outside_links(markdown: str, page_path: str, docs_dir: Path, repo_url: str) -> str:
    """Rewrite ``markdown``'s links from ``page_path`` (relative to ``docs_dir``) that leave
    ``docs_dir`` into ``repo_url`` links; log a warning for each that points nowhere."""
    root = docs_dir.parent
    page_dir = posixpath.dirname(f"{docs_dir.name}/{page_path}")

    def rewrite(match: re.Match[str]) -> str:
        target = posixpath.normpath(posixpath.join(page_dir, match.group(2)))
        if target.startswith(f"{docs_dir.name}/") or target.startswith(".."):
            return match.group(0)
        if not (root / target).exists():
            log.warning("%s: the link %r points to no file", page_path, match.group(2))
            return match.group(0)
        kind = "tree" if (root / target).is_dir() else "blob"
        return f"{match.group(1)}{repo_url.rstrip('/')}/{kind}/main/{target}{match.group(3)}"

    parts: list[str] = []
    last = 0
    for fence in FENCE.finditer(markdown):
        parts.append(LINK.sub(rewrite, markdown[last : fence.start()]))
        parts.append(fence.group(0))
        last = fence.end()
    parts.append(LINK.sub(rewrite, markdown[last:]))
    return "".join(parts)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return outside_links(
        markdown, page.file.src_uri, Path(config["docs_dir"]), config["repo_url"] or ""
    )
