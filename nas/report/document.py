"""An HTML page of plotly figures, and writing it so a reloading browser never sees half.

The page carries plotly's JavaScript inline by default (no CDN: it opens on an offline
cluster node); it is written atomically, so ``nas report --watch`` can rewrite it while
a search runs and a browser reloads it.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any

from nas.core.atomic import write_text
from nas.core.errors import NasError

__all__ = ["PLOTLYJS", "PLOTLYJS_FILE", "check_plotlyjs", "page", "plot_html", "write_page"]

#: Where a page gets plotly's JavaScript (``--plotlyjs``): inline (the default: the page
#: opens anywhere, offline, but carries ~4.8 MB), in ``plotly.min.js`` beside the page
#: (written once: small pages, still offline; for ``--watch``), or from plotly's CDN.
PLOTLYJS = ("inline", "directory", "cdn")
PLOTLYJS_FILE = "plotly.min.js"


def check_plotlyjs(plotlyjs: str) -> str:
    if plotlyjs not in PLOTLYJS:
        raise NasError(
            f"unknown choice {plotlyjs!r} (known: {', '.join(PLOTLYJS)})", field="--plotlyjs"
        )
    return plotlyjs


def _plotly_script(plotlyjs: str) -> str:
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    if check_plotlyjs(plotlyjs) == "inline":
        return f'<script type="text/javascript">{get_plotlyjs()}</script>'
    if plotlyjs == "directory":
        return f'<script src="{PLOTLYJS_FILE}"></script>'
    cdn = f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js"
    return f'<script src="{cdn}" charset="utf-8"></script>'


def page(
    title: str,
    summary: str,
    body: str,
    *,
    refresh_s: int | None = None,
    plotlyjs: str = "inline",
) -> str:
    """A whole HTML page around ``body`` with plotly's JavaScript as ``plotlyjs`` says
    (``PLOTLYJS``); with ``refresh_s`` the browser reloads it that often."""
    meta = f'<meta http-equiv="refresh" content="{refresh_s}">' if refresh_s else ""
    title = html.escape(title)
    written = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{meta}<title>{title}</title>
{_plotly_script(plotlyjs)}
<style>body {{ font-family: sans-serif; margin: 1.5em; }}
table.front {{ border-collapse: collapse; font-size: 0.9em; }}
table.front td, table.front th {{ border: 1px solid #ccc; padding: 0.2em 0.5em; }}
table.front td:nth-child(n+2):nth-child(-n+7) {{ text-align: right; }}
table.front td:last-child {{ font-family: monospace; }}</style></head>
<body><h1>{title}</h1>
<p>{html.escape(summary)}; written {written}</p>
{body}
</body></html>
"""


def plot_html(fig: Any) -> str:
    return str(fig.to_html(full_html=False, include_plotlyjs=False))


def write_page(path: Path, text: str, *, plotlyjs: str = "inline") -> None:
    """Write ``text`` to ``path`` atomically: a reader (a browser reloading it) never sees
    half a page, and an interrupted write leaves no partial file beside it. A page made
    with ``plotlyjs="directory"`` gets ``plotly.min.js`` beside it (written when missing
    or from another plotly version)."""
    if check_plotlyjs(plotlyjs) == "directory":
        from plotly.offline import get_plotlyjs

        bundle, js = get_plotlyjs(), path.parent / PLOTLYJS_FILE
        if not js.exists() or js.stat().st_size != len(bundle.encode("utf-8")):
            write_text(js, bundle)
    write_text(path, text)
