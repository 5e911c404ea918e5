"""Which kind of file a shared file is, from what Slack says about it. Pure.

Slack's ``filetype`` is its own short name for the type (the list is on
https://docs.slack.dev/reference/objects/file-object, "File types"): it is what Slack
detected, so it is trusted first; then the ``mimetype``; then the name's extension. A file
none of them places is ``unknown`` and is judged by its content (``extract.decode_text``).
"""

from __future__ import annotations

from typing import Literal

#: text: read as text; post: a Slack post or canvas (HTML, read as text); pdf: its text layer;
#: image / media: the model cannot see or hear them; binary: archives, office files, programs;
#: unknown: decided by looking at the bytes.
Kind = Literal["text", "post", "pdf", "image", "media", "binary", "unknown"]

# Slack filetypes of text: plain text, markup, data and every programming language it knows.
_TEXT_FILETYPES = frozenset({
    "text", "csv", "tsv", "json", "yaml", "yml", "xml", "html", "htm", "markdown", "md", "rst",
    "log", "diff", "patch", "sql", "shell", "bash", "zsh", "powershell", "bat", "python",
    "javascript", "typescript", "jsx", "tsx", "java", "kotlin", "scala", "groovy", "go", "rust",
    "c", "cpp", "csharp", "objc", "swift", "ruby", "php", "perl", "lua", "r", "matlab", "haskell",
    "clojure", "erlang", "elixir", "elm", "fsharp", "ocaml", "dart", "julia", "lisp", "scheme",
    "pascal", "fortran", "cobol", "vb", "vbscript", "verilog", "vhdl", "css", "scss", "sass",
    "less", "dockerfile", "makefile", "cmake", "toml", "ini", "properties", "config", "apache",
    "nginx", "puppet", "smalltalk", "tcl", "latex", "tex", "protobuf", "graphql", "terraform",
    "hcl", "svg", "coffeescript", "d", "boxnote",
})
_POST_FILETYPES = frozenset({"post", "space", "quip", "canvas"})
_IMAGE_FILETYPES = frozenset({"png", "jpg", "jpeg", "gif", "bmp", "webp", "heic", "heif",
                              "tiff", "tif", "ico", "psd", "ai", "eps", "sketch", "raw"})
_MEDIA_FILETYPES = frozenset({"mp3", "m4a", "wav", "ogg", "flac", "aac", "mp4", "mov", "m4v",
                              "webm", "avi", "mkv", "mpg", "mpeg", "wmv", "3gp"})
_BINARY_FILETYPES = frozenset({"zip", "gzip", "gz", "tar", "tgz", "bz2", "xz", "7z", "rar",
                               "dmg", "iso", "exe", "dll", "so", "apk", "jar", "bin", "doc",
                               "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp",
                               "pages", "numbers", "key", "keynote", "sqlite", "db", "parquet",
                               "avro", "pyc", "class", "wasm", "ttf", "otf", "woff", "woff2"})
_TEXT_MIMETYPES = frozenset({
    "application/json", "application/xml", "application/x-yaml", "application/yaml",
    "application/javascript", "application/x-javascript", "application/ecmascript",
    "application/x-sh", "application/x-shellscript", "application/sql", "application/x-sql",
    "application/toml", "application/x-python", "application/x-ndjson", "application/csv",
    "application/x-httpd-php", "application/graphql", "application/ld+json",
    "application/x-tex", "application/x-latex", "image/svg+xml",
})
_TEXT_EXTENSIONS = _TEXT_FILETYPES | frozenset({
    "txt", "py", "js", "ts", "rb", "rs", "kt", "cs", "h", "hpp", "cc", "cxx", "m", "sh", "ps1",
    "yml", "cfg", "conf", "env", "jsonl", "ndjson", "out", "err", "trace", "pl", "ex", "exs",
    "hs", "ml", "clj", "tf", "proto", "gradle", "vue", "svelte", "ipynb", "lock", "gitignore",
})

#: How a kind of file is named to people and to the model, when its type says little.
LABELS = {"text": "text", "post": "Slack post", "pdf": "PDF", "image": "image",
          "media": "audio or video", "binary": "binary file", "unknown": "file"}


def extension(name: str) -> str:
    """The lower-case extension of a file name ("" if none): ``build.LOG`` -> ``log``."""
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base.strip(".") else ""


def classify(*, name: str, filetype: str = "", mimetype: str = "", mode: str = "") -> Kind:
    """The kind of a shared file, from Slack's ``filetype`` first, then ``mimetype``, then the
    name's extension; ``unknown`` when none of them says."""
    filetype = filetype.lower()
    mimetype = mimetype.lower().split(";", 1)[0].strip()
    if mode in ("post", "space") or filetype in _POST_FILETYPES:
        return "post"
    if mode == "snippet":
        return "text"  # a snippet is text whatever language Slack labels it
    for guess in (filetype, _from_mimetype(mimetype), extension(name)):
        kind = _from_filetype(guess) if guess else None
        if kind is not None:
            return kind
    return "unknown"


def _from_filetype(filetype: str) -> Kind | None:
    if filetype in _TEXT_FILETYPES or filetype in _TEXT_EXTENSIONS:
        return "text"
    if filetype == "pdf":
        return "pdf"
    if filetype in _IMAGE_FILETYPES:
        return "image"
    if filetype in _MEDIA_FILETYPES:
        return "media"
    if filetype in _BINARY_FILETYPES:
        return "binary"
    return None


def _from_mimetype(mimetype: str) -> str:
    """The mimetype as a filetype-like word for ``_from_filetype``; "" when it says nothing."""
    if not mimetype or mimetype in ("application/octet-stream", "binary/octet-stream"):
        return ""
    if mimetype in _TEXT_MIMETYPES or mimetype.startswith("text/") or mimetype.endswith(
            ("+json", "+xml")):
        return "text"
    if mimetype == "application/pdf":
        return "pdf"
    major = mimetype.split("/", 1)[0]
    if major == "image":
        return "png"
    if major in ("audio", "video"):
        return "mp3"
    if mimetype.startswith(("application/zip", "application/x-", "application/vnd.")):
        return "zip"
    return ""


def label(kind: Kind, *, filetype: str = "", name: str = "") -> str:
    """A short name of the file's type for people and the model: ``PY``, ``CSV``, ``PDF``,
    ``PNG image``, ``log``."""
    word = (filetype or extension(name)).lower()
    if kind == "image":
        return f"{word.upper()} image" if word and word in _IMAGE_FILETYPES else "image"
    if kind == "media":
        return f"{word.upper()} audio or video" if word in _MEDIA_FILETYPES else "audio or video"
    if kind in ("post", "pdf"):
        return LABELS[kind]
    if word in ("text", "txt", ""):
        return "text" if kind == "text" else LABELS[kind]
    return word if word in ("log", "diff", "patch", "markdown") else word.upper()
