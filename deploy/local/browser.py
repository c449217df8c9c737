#!/usr/bin/env python3
"""Install what the console's browser tests drive: Debian's Chromium, a CJK font and axe-core.

Playwright's own browser download cannot be reached from the machines this project runs on, so
the tests drive the distribution's `chromium` (`/usr/bin/chromium`); without `fonts-noto-cjk`
every Chinese character of a screenshot or PDF is an empty box. axe-core comes from the npm
registry into `.local/node/` at test time, never into the repository. Stdlib only, like
`infra.py`, so it runs before any virtualenv exists.

    python3 deploy/local/browser.py ensure    # install what is missing (apt-get needs root)
    python3 deploy/local/browser.py status    # what is there; exit 3 when something is missing
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
NODE_DIR = REPO_ROOT / ".local" / "node"
CHROMIUM = Path("/usr/bin/chromium")
CJK_FONT_DIR = Path("/usr/share/fonts/opentype/noto")
AXE_VERSION = "4.14.1"
AXE_SCRIPT = NODE_DIR / "node_modules" / "axe-core" / "axe.min.js"
DEBIAN_PACKAGES = ("chromium", "fonts-noto-cjk")


class BrowserToolsError(RuntimeError):
    """Something the browser tests need is missing and cannot be installed here."""


def _say(message: str) -> None:
    print(f"==> {message}", file=sys.stderr, flush=True)


def cjk_font_present() -> bool:
    """A Noto CJK font is installed (the package puts its .ttc files in one folder)."""
    return CJK_FONT_DIR.is_dir() and any(CJK_FONT_DIR.glob("NotoSansCJK*"))


def missing() -> list[str]:
    """What of Chromium, the CJK font and axe-core is not installed yet."""
    found = []
    if not CHROMIUM.exists():
        found.append("chromium")
    if not cjk_font_present():
        found.append("fonts-noto-cjk")
    if not AXE_SCRIPT.exists():
        found.append("axe-core")
    return found


def _install_debian_packages() -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise BrowserToolsError(
            "the browser tests need Debian's chromium and fonts-noto-cjk; install them with "
            f"`apt-get install {' '.join(DEBIAN_PACKAGES)}` (as root)"
        )
    _say(f"installing {' '.join(DEBIAN_PACKAGES)} with apt-get (first run only)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *DEBIAN_PACKAGES],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def _install_axe() -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise BrowserToolsError("the accessibility tests need npm (Node.js) to install axe-core")
    _say(f"installing axe-core {AXE_VERSION} from npm into .local/node (first run only)")
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    manifest = NODE_DIR / "package.json"
    if not manifest.exists():
        manifest.write_text(json.dumps({"name": "permits-browser-tools", "private": True}))
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", f"axe-core@{AXE_VERSION}"],
        check=True,
        cwd=NODE_DIR,
    )


def ensure() -> None:
    """Install whatever is missing; raises BrowserToolsError when that is impossible here."""
    gaps = missing()
    if "chromium" in gaps or "fonts-noto-cjk" in gaps:
        _install_debian_packages()
    if "axe-core" in gaps:
        _install_axe()
    still = missing()
    if still:
        raise BrowserToolsError(f"still missing after installing: {', '.join(still)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["ensure", "status"])
    args = parser.parse_args(argv)
    if args.command == "status":
        gaps = missing()
        print("missing: " + ", ".join(gaps) if gaps else "chromium, CJK font and axe-core present")
        return 3 if gaps else 0
    try:
        ensure()
    except (BrowserToolsError, subprocess.CalledProcessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
