#!/usr/bin/env python3
"""The Debian package's /etc/invent-proxy/invent-proxy.yaml, made from the commented
reference config (config/invent-proxy.yaml).

The package installs the reference with every option and its comments, so that it
passes `invent-proxy check` as installed, with no secrets set: the header says where
the file is and what to set, and the `identity` block is commented out (its keys come
from the environment, which a fresh install does not have). Nothing else differs.

    deploy/deb/package-config.py            # writes deploy/deb/invent-proxy.yaml
    deploy/deb/package-config.py --check    # fails if that file is not what it writes
    deploy/deb/package-config.py --uncomment FILE
                                            # FILE with its identity block turned back
                                            # on, as the file's comment tells an operator

deploy/deb/check.sh runs --check, and checks the installed file as it is and with its
identity block back on.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
REFERENCE = REPO / "config" / "invent-proxy.yaml"
PACKAGED = REPO / "deploy" / "deb" / "invent-proxy.yaml"

# The reference's opening lines, up to the line kept from it.
REFERENCE_HEADER_END = "# Any string may reference an environment variable"
HEADER = """\
# invent-proxy configuration: the file invent-proxy.service reads.
#
# Installed by the invent-proxy package (a conffile: your edits stay on upgrades; a purge
# removes it). Set at least upstream.url (your site) and assistant.id (your assistant),
# validate it, and start the service:
#   sudo invent-proxy check --config /etc/invent-proxy/invent-proxy.yaml
#   sudo systemctl enable --now invent-proxy
# After a change: `sudo systemctl reload invent-proxy`. The service runs as the user
# `invent-proxy`: files this config names must be readable by it. Secrets go in
# /etc/invent-proxy/secrets.env (root-only), never here.
#
"""
IDENTITY_INTRO = "# Who the visitor is. Without this block every visitor is anonymous.\n"
IDENTITY_NOTE = """\
# Off as installed: every visitor is anonymous. To turn it on, remove the `# ` in the
# first column of the lines from `# identity:` down to the next blank line (the lines
# commented with an indented `#` stay commented), and set INVENT_SECRET_KEY and
# SESSION_JWT_SECRET in /etc/invent-proxy/secrets.env.
"""


def identity_block(lines, start_marker):
    """(first, end) of the identity block: its `identity:` line and the lines after it up
    to the next blank line."""
    first = lines.index(start_marker)
    end = first + 1
    while end < len(lines) and lines[end].strip():
        end += 1
    return first, end


def generate(reference):
    lines = reference.splitlines(keepends=True)
    header_end = next(i for i, line in enumerate(lines) if line.startswith(REFERENCE_HEADER_END))
    lines = lines[header_end:]
    first, end = identity_block(lines, "identity:\n")
    if lines[first - 1] != IDENTITY_INTRO:
        raise SystemExit(f"{REFERENCE}: the identity block no longer starts after {IDENTITY_INTRO!r}")
    for i in range(first, end):
        if not lines[i].lstrip().startswith("#"):
            lines[i] = "# " + lines[i]
        elif not lines[i].startswith(" "):
            raise SystemExit(f"{REFERENCE}:{header_end + i + 1}: a comment in the first column inside "
                             "the identity block would be uncommented with it")
    lines[first:first] = [IDENTITY_NOTE]
    return HEADER + "".join(lines)


def uncomment(packaged):
    """The packaged file with its identity block on, as IDENTITY_NOTE says to do it."""
    lines = packaged.splitlines(keepends=True)
    first, end = identity_block(lines, "# identity:\n")
    for i in range(first, end):
        if lines[i].startswith("# "):
            lines[i] = lines[i][2:]
    return "".join(lines)


def main(argv):
    expected = generate(REFERENCE.read_text())
    if argv[1:] == ["--check"]:
        if not PACKAGED.exists() or PACKAGED.read_text() != expected:
            sys.exit(f"{PACKAGED.relative_to(REPO)} is not what deploy/deb/package-config.py makes of "
                     f"{REFERENCE.relative_to(REPO)}: run deploy/deb/package-config.py and commit the result")
        print(f"  ok   {PACKAGED.relative_to(REPO)} is {REFERENCE.relative_to(REPO)} with the package's "
              "header and the identity block commented out")
    elif len(argv) == 3 and argv[1] == "--uncomment":
        sys.stdout.write(uncomment(Path(argv[2]).read_text()))
    elif len(argv) == 1:
        PACKAGED.write_text(expected)
        print(f"wrote {PACKAGED.relative_to(REPO)}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
