"""A small results page built with ``dominate``: headers, rows of captioned images, single figures."""

from __future__ import annotations

import os

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

    def save(self, filename: str = "index.html") -> str:
        """Write the page and return its path."""
        path = os.path.join(self.web_dir, filename)
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.doc.render())
        return path
