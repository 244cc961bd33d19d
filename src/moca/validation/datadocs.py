"""Data Docs that read well offline: the pages name their data asset, and load no asset from the internet.

GE 1.24's pages load Bootstrap, jQuery, bootstrap-table, Font Awesome, ... from CDNs; without them (an air-gapped
cluster) the pages render unstyled and the index lists nothing, because its tables are built by bootstrap-table.
`make_offline` copies the vendored release files (`offline_assets/`, see its README) into the site and points
every page at them; links to GE's website lose their href. `VersionedValidationResultsPageRenderer` fills in the
"Data asset" that GE's page header leaves at None for fluent data sources (its index page already reads it from
the validation result, the page does not).
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path
from typing import Any

from great_expectations.render.renderer import ValidationResultsPageRenderer

from moca.io import atomic_write_text

log = logging.getLogger("moca.validation")
ASSETS = Path(__file__).with_name("offline_assets")
VENDOR = "static/vendor"

# Each remote asset GE's templates name -> its vendored copy; None: dropped (see offline_assets/README.md).
REMOTE_ASSETS: dict[str, str | None] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper/popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table/bootstrap-table-filter-control.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": None,
    "https://cdn.jsdelivr.net/npm/vega@5": None,
    "https://cdn.jsdelivr.net/npm/vega-lite@5": None,
    "https://cdn.jsdelivr.net/npm/vega-embed@6": None,
}  # fmt: skip
GE_IMAGES = re.compile(r"https://great-expectations-web-assets\.[^\"'/]+/([\w.-]+?)(\?[^\"']*)?(?=[\"'])")
REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']https?://|url\(\s*["']?https?://""", re.IGNORECASE)
TAG = re.compile(r"<(script|link|a)\b[^>]*>(?:\s*</script>)?", re.IGNORECASE | re.DOTALL)
URL_ATTRIBUTE = re.compile(r"""\s(src|href)\s*=\s*["'](https?://[^"']*)["']""", re.IGNORECASE)
SITE_STATIC = re.compile(r"""(["'(])(?:\./|(?:\.\./)+)static/""")  # a page's relative path to the site's static/
SRI_ATTRIBUTES = re.compile(r"""\s(integrity|crossorigin)\s*=\s*["'][^"']*["']""", re.IGNORECASE)


class VersionedValidationResultsPageRenderer(ValidationResultsPageRenderer):
    """GE's validation page, with the header's "Data asset" taken from the batch definition (GE leaves None)."""

    @classmethod
    def _render_validation_header(cls, validation_results: Any) -> Any:
        header = super()._render_validation_header(validation_results)
        params = header.subheader.string_template["params"]
        params["data_asset_name"] = params.get("data_asset_name") or validation_results.asset_name
        return header


def _offline_tag(match: re.Match[str], prefix: str) -> str:
    tag = match.group(0)
    found = URL_ATTRIBUTE.search(tag)
    if found is None:
        return tag
    url = found.group(2)
    if match.group(1).lower() == "a":  # a link to GE's website: keep the text, drop the destination
        return tag.replace(found.group(0), "")
    if url not in REMOTE_ASSETS:
        return tag  # reported by make_offline, never silently dropped
    local = REMOTE_ASSETS[url]
    if local is None:
        return ""
    return SRI_ATTRIBUTES.sub("", tag.replace(found.group(0), f' {found.group(1)}="{prefix}{VENDOR}/{local}"'))


def _local_images(text: str, prefix: str, site: Path) -> str:
    """GE's logos come from its S3 bucket; the site ships the same images (a dark-mode variant it lacks: the logo)."""
    def local(match: re.Match[str]) -> str:
        name = match.group(1) if (site / "static/images" / match.group(1)).is_file() else "logo-long.png"
        return f"{prefix}static/images/{name}"

    return GE_IMAGES.sub(local, text)


def offline_page(html: str, prefix: str, site: Path) -> str:
    """One page with its remote assets replaced by the vendored ones; `prefix` leads from the page to the site root.

    Relative links to the site's `static/` are recomputed too: GE's favicon link on validation pages climbs one
    folder short of the site root."""
    html = SITE_STATIC.sub(lambda m: f"{m.group(1)}{prefix}static/", html)
    return TAG.sub(lambda m: _offline_tag(m, prefix), _local_images(html, prefix, site))


def remote_references(text: str) -> list[str]:
    """src/href/url() references to http(s) addresses left in a page or stylesheet."""
    return [text[m.start(): m.start() + 120] for m in REMOTE.finditer(text)]


def make_offline(site: Path) -> list[str]:
    """Vendor the assets into `site` and rewrite its pages; returns 'page: reference' for anything still remote."""
    shutil.copytree(ASSETS, site / VENDOR, dirs_exist_ok=True, ignore=shutil.ignore_patterns("README.md"))
    remaining = []
    for file in sorted([*site.rglob("*.html"), *(site / "static/styles").glob("*.css")]):
        prefix = "../" * (len(file.relative_to(site).parts) - 1)
        text = file.read_text(encoding="utf-8")
        text = offline_page(text, prefix, site) if file.suffix == ".html" else _local_images(text, prefix, site)
        atomic_write_text(file, text)
        if "vegaEmbed(" in text:
            log.warning("%s draws a chart: charts need vega, which is not vendored (offline_assets/README.md)", file)
        remaining += [f"{file.relative_to(site)}: {ref}" for ref in remote_references(text)]
    for line in remaining:
        log.warning("Data Docs still reference a remote address: %s", line)
    return remaining
