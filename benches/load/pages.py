#!/usr/bin/env python3
"""Deterministic test content for the load benchmark.

    pages.py OUT_DIR

writes html-10k.html, html-30k.html, html-100k.html, html-1m.html (real-looking pages:
doctype, a head with meta/title/link/style/script, a nav, many articles of nested divs,
paragraphs, links, inline SVG icons and comments, a footer, </body></html>), json-200k.json,
and html-30k.html.gz, html-100k.html.gz: the same pages gzip-compressed at level 6 (zlib's
default, what `gzip -6` and most origins use), for nginx's gzip_static. The same seed gives
the same bytes on every run, so runs are comparable.
"""

import gzip
import json
import os
import random
import sys

WORDS = (
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
    "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
    "exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure "
    "in reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint "
    "occaecat cupidatat non proident sunt culpa qui officia deserunt mollit anim id est"
).split()

ICONS = [
    '<svg class="icon" width="16" height="16" viewBox="0 0 24 24" aria-hidden="true">'
    '<path d="M12 2l3.09 6.26L22 9.27l-5 4.87L18.18 21 12 17.77 5.82 21 7 14.14l-5-4.87'
    ' 6.91-1.01L12 2z" fill="currentColor"/></svg>',
    '<svg class="icon" width="16" height="16" viewBox="0 0 24 24" aria-hidden="true">'
    '<circle cx="12" cy="12" r="10" stroke="currentColor" fill="none" stroke-width="2"/>'
    '<path d="M12 6v6l4 2" stroke="currentColor" fill="none" stroke-width="2"/></svg>',
    '<svg class="icon" width="16" height="16" viewBox="0 0 24 24" aria-hidden="true">'
    '<path d="M20.84 4.61a5.5 5.5 0 0 0-7.78 0L12 5.67l-1.06-1.06a5.5 5.5 0 0 0-7.78 7.78'
    'l1.06 1.06L12 21.23l7.78-7.78 1.06-1.06a5.5 5.5 0 0 0 0-7.78z" fill="none" '
    'stroke="currentColor" stroke-width="2"/></svg>',
]

HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="description" content="Acme Outdoor Journal: gear reviews, trail reports and field notes.">
<meta property="og:title" content="Acme Outdoor Journal">
<title>Acme Outdoor Journal &mdash; Field notes</title>
<link rel="icon" href="/favicon.ico">
<link rel="stylesheet" href="/static/css/site.3f9a1c.css">
<link rel="preload" href="/static/fonts/inter-var.woff2" as="font" type="font/woff2" crossorigin>
<style>
  :root { --fg: #1f2933; --bg: #ffffff; --accent: #0b7285; }
  body { margin: 0; font: 16px/1.5 Inter, system-ui, sans-serif; color: var(--fg); }
  .site-nav { display: flex; gap: 1rem; padding: .75rem 1.5rem; border-bottom: 1px solid #e4e7eb; }
  .card { border: 1px solid #e4e7eb; border-radius: 8px; padding: 1rem 1.25rem; margin: 1rem 0; }
  .card .meta { color: #616e7c; font-size: .875rem; }
  .icon { vertical-align: -2px; margin-right: .25rem; }
</style>
<script>
  window.dataLayer = window.dataLayer || [];
  function gtag(){ dataLayer.push(arguments); }
  gtag('js', new Date()); gtag('config', 'G-BENCH0000');
</script>
</head>
<body class="page page-journal">
<!-- header: rendered by the legacy CMS template header.tpl -->
<header class="site-header">
  <nav class="site-nav" aria-label="Main">
    <a class="brand" href="/">Acme Outdoor</a>
    <a class="nav-link" href="/journal/">Journal</a>
    <a class="nav-link" href="/gear/">Gear</a>
    <a class="nav-link" href="/trails/">Trails</a>
    <a class="nav-link" href="/about/">About</a>
    <a class="nav-link nav-cta" href="/account/login?next=%2Fjournal%2F">Sign in</a>
  </nav>
</header>
<main id="content" class="container">
"""

FOOT = """</main>
<!-- footer: footer.tpl -->
<footer class="site-footer">
  <div class="footer-cols">
    <div class="col"><h4>Company</h4><a href="/about/">About</a> <a href="/careers/">Careers</a></div>
    <div class="col"><h4>Help</h4><a href="/help/shipping">Shipping</a> <a href="/help/returns">Returns</a></div>
  </div>
  <p class="copyright">&copy; 2009&ndash;2026 Acme Outdoor Ltd.</p>
</footer>
<script>
  document.querySelectorAll('.card .like').forEach(function (b) {
    b.addEventListener('click', function () { b.classList.toggle('liked'); });
  });
</script>
</body>
</html>
"""


def sentence(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def paragraph(rng):
    parts = []
    for _ in range(rng.randint(2, 4)):
        parts.append(sentence(rng, rng.randint(6, 14)))
        if rng.random() < 0.5:
            slug = "-".join(rng.choice(WORDS) for _ in range(3))
            parts.append(f'<a class="inline-link" href="/journal/{slug}">{slug.replace("-", " ")}</a>')
    return "<p>" + " ".join(parts) + "</p>"


def article(rng, i):
    slug = "-".join(rng.choice(WORDS) for _ in range(4))
    icon = ICONS[i % len(ICONS)]
    body = "\n      ".join(paragraph(rng) for _ in range(rng.randint(1, 3)))
    comment = f"\n  <!-- card {i}: cached fragment -->" if i % 5 == 0 else ""
    return f"""{comment}
  <article class="card" id="post-{i}" data-id="{1000 + i}">
    <div class="card-header">
      <h2 class="card-title"><a href="/journal/{slug}">{sentence(rng, 5)[:-1]}</a></h2>
      <div class="meta">{icon}<span class="author">by <a href="/people/{rng.choice(WORDS)}">{rng.choice(WORDS).title()}</a></span> <time datetime="2024-05-{1 + i % 28:02d}">May {1 + i % 28}</time></div>
    </div>
    <div class="card-body">
      <div class="excerpt">
      {body}
      </div>
    </div>
    <div class="card-footer"><a class="like" href="#post-{i}">{ICONS[0]}Like</a> <a class="comments" href="/journal/{slug}#comments">{rng.randint(0, 99)} comments</a></div>
  </article>"""


def html_page(size, seed):
    """A page of about `size` bytes: whole articles until the next one would not fit."""
    rng = random.Random(seed)
    parts, total, i = [HEAD], len(HEAD) + len(FOOT), 0
    while True:
        a = article(rng, i)
        if total + len(a) > size:
            break
        parts.append(a)
        total += len(a)
        i += 1
    parts.append("\n" + FOOT)
    return "".join(parts)


def json_doc(size, seed):
    rng = random.Random(seed)
    items, total = [], 0
    while total < size:
        item = {
            "id": 10000 + len(items),
            "sku": f"ACME-{rng.randint(100000, 999999)}",
            "name": sentence(rng, 3)[:-1],
            "price": round(rng.uniform(5, 500), 2),
            "tags": [rng.choice(WORDS) for _ in range(3)],
            "description": sentence(rng, 16),
            "in_stock": rng.random() < 0.8,
        }
        items.append(item)
        total += len(json.dumps(item)) + 2
    return json.dumps({"items": items, "count": len(items)}, indent=None)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    files = {
        "html-10k.html": html_page(10 * 1024, 10),
        "html-30k.html": html_page(30 * 1024, 30),
        "html-100k.html": html_page(100 * 1024, 100),
        "html-1m.html": html_page(1024 * 1024, 1000),
        "json-200k.json": json_doc(200 * 1024, 200),
    }
    for name, text in files.items():
        with open(os.path.join(out, name), "w", encoding="utf-8") as f:
            f.write(text)
    for name in ("html-30k.html", "html-100k.html"):
        data = files[name].encode("utf-8")
        with open(os.path.join(out, name + ".gz"), "wb") as f:
            f.write(gzip.compress(data, compresslevel=6, mtime=0))


if __name__ == "__main__":
    main()
