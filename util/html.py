"""Results pages built with ``dominate``: headers, rows of captioned images, single figures; the training page."""

from __future__ import annotations

import contextlib
import os
import re

import dominate
from dominate.tags import a, br, div, h3, img, meta, p, table, td, tr


class HTML:
    """An HTML page in ``web_dir`` whose images live in ``web_dir/images``.

    Args:
        web_dir: folder of the page; created with its ``images`` subfolder.
        title: page title.
        refresh: if > 0, the browser reloads the page every ``refresh`` seconds (training pages).
    """

    def __init__(self, web_dir: str, title: str, refresh: int = 0) -> None:
        self.web_dir = web_dir
        self.title = title
        self.img_dir = os.path.join(web_dir, "images")
        os.makedirs(self.img_dir, exist_ok=True)
        self.doc = dominate.document(title=title)
        if refresh > 0:
            with self.doc.head:
                meta(http_equiv="refresh", content=str(refresh))

    def get_image_dir(self) -> str:
        """Folder where callers save the images that ``add_images`` refers to."""
        return self.img_dir

    def add_header(self, text: str) -> None:
        with self.doc:
            h3(text)

    def add_images(self, ims: list[str], txts: list[str], links: list[str], width: int = 256) -> None:
        """Add one table row; ``ims`` and ``links`` are file names relative to the image folder."""
        if not (len(ims) == len(txts) == len(links)):
            raise ValueError(f"ims, txts and links differ in length: {len(ims)}, {len(txts)}, {len(links)}")
        with self.doc, table(style="table-layout: fixed; border: 1px solid;"), tr():
            for im, txt, link in zip(ims, txts, links):
                # A div, not the official nested <p>, so the page stays valid HTML.
                with td(style="word-wrap: break-word; text-align: center; vertical-align: top;"), div():
                    with a(href=f"images/{link}"):
                        img(style=f"width:{width}px", src=f"images/{im}", alt=txt)
                    br()
                    p(txt)

    def add_image_file(self, path: str, caption: str, width: int | None = None) -> None:
        """Add a single figure (e.g. a loss-curve PNG) given by its path; linked relative to the page."""
        rel = os.path.relpath(path, self.web_dir).replace(os.sep, "/")
        with self.doc, div():
            with a(href=rel):
                img(src=rel, alt=caption, style=f"width:{width}px" if width else "max-width:100%")
            br()
            p(caption)

    def save(self, filename: str = "index.html", atomic: bool = False) -> str:
        """Write the page and return its path; ``atomic`` writes a temp file first (pages that reload)."""
        path = os.path.join(self.web_dir, filename)
        target = path + ".tmp" if atomic else path
        with open(target, "w", encoding="utf-8") as f:
            f.write(self.doc.render())
        if atomic:
            os.replace(target, path)
        return path


ROW_FILE = re.compile(r"^epoch(\d+)_(.+)\.png$")


class TrainingPage:
    """The training page ``web_dir/index.html``: the loss plot, then one row of visuals per saved epoch.

    The page is always rebuilt from the image files on disk, so it shows exactly what is there (also after a
    resume, when earlier runs left rows). Only the newest ``keep_last`` rows are kept (0: all); older files are
    deleted, which bounds both the disk use and the size of the page (a page growing by one row per epoch
    was what made the memory of long runs creep up).
    """

    def __init__(self, web_dir: str, title: str, *, width: int = 256, keep_last: int = 50, refresh: int = 30):
        self.web_dir, self.title, self.width, self.keep_last, self.refresh = (
            web_dir,
            title,
            width,
            keep_last,
            refresh,
        )
        self.img_dir = os.path.join(web_dir, "images")
        self.labels: list[str] = []  # the order of the visuals, as the model declares them

    def save_row(self, epoch: int, visuals: dict) -> None:
        """Save (or overwrite) the images of ``epoch``: one PNG per visual."""
        from util.image_utils import save_image  # torch is only needed by the training page, not by HTML

        for label, t in visuals.items():
            save_image(t, os.path.join(self.img_dir, f"epoch{epoch:03d}_{label}.png"))
        self.labels = list(visuals)

    def rows_on_disk(self) -> dict[int, list[str]]:
        """Epoch -> labels of its images, from the file names in the image folder."""
        rows: dict[int, list[str]] = {}
        if os.path.isdir(self.img_dir):
            for name in os.listdir(self.img_dir):
                m = ROW_FILE.match(name)
                if m:
                    rows.setdefault(int(m.group(1)), []).append(m.group(2))
        return rows

    def prune(self, rows: dict[int, list[str]]) -> dict[int, list[str]]:
        """Delete the rows beyond the newest ``keep_last``; returns the rows left."""
        if self.keep_last <= 0 or len(rows) <= self.keep_last:
            return rows
        epochs = sorted(rows, reverse=True)
        for epoch in epochs[self.keep_last :]:
            for label in rows.pop(epoch):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(self.img_dir, f"epoch{epoch:03d}_{label}.png"))
        return rows

    def write(self, loss_plot: str | None = None) -> str:
        """Prune, then write index.html (newest epoch first) through a temp file; returns its path."""
        rows = self.prune(self.rows_on_disk())
        page = HTML(self.web_dir, self.title, refresh=self.refresh)
        if loss_plot is not None and os.path.isfile(loss_plot):
            page.add_header("loss curves")
            page.add_image_file(loss_plot, "losses and metrics by step")
        order = {label: i for i, label in enumerate(self.labels)}
        for epoch in sorted(rows, reverse=True):
            labels = sorted(rows[epoch], key=lambda lb: (order.get(lb, len(order)), lb))
            ims = [f"epoch{epoch:03d}_{label}.png" for label in labels]
            page.add_header(f"epoch [{epoch}]")
            page.add_images(ims, labels, ims, width=self.width)
        return page.save(atomic=True)
