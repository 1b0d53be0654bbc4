"""A loopback fake of the Hugging Face Hub, for tests that cannot reach the real one.

It is a real HTTP server (``http.server.ThreadingHTTPServer`` on 127.0.0.1)
speaking the parts of the Hub protocol that ``huggingface_hub`` 2.4 uses:

Downloads (``hf_hub_download``, ``snapshot_download``)
    ``HEAD``/``GET /{org}/{repo}/resolve/{revision}/{path}``. Regular files are
    answered directly with ``ETag`` (the git blob id), ``X-Repo-Commit`` and
    ``Content-Length``. "LFS" files (``*.h5``, ``*.keras``, ``*.png``, like the
    Hub's default ``.gitattributes``) are answered with a ``302`` to a second
    server playing the CDN (another port, hence another origin, so
    ``huggingface_hub`` does not follow it for ``HEAD`` and reads the metadata
    from the redirect itself: ``X-Linked-Etag`` = sha256, ``X-Linked-Size``,
    ``X-Repo-Commit``). The ``GET`` then goes to the CDN URL. Both servers honour
    ``Range`` requests (used by ``huggingface_hub`` to resume a dropped transfer).
    Missing repositories, revisions and files get ``404`` with the Hub's
    ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``).
    ``GET /api/models/{repo}/revision/{rev}`` and ``/tree/{rev}`` serve repo info
    and listings (``snapshot_download``, ``keras.saving.load_model("hf://...")``).

Uploads (``HfApi.create_repo`` + ``HfApi.upload_folder``)
    ``POST /api/repos/create``, ``POST /api/validate-yaml``,
    ``POST /api/models/{repo}/preupload/{rev}`` (always answers
    ``uploadMode: "regular"``: LFS/Xet uploads are not emulated) and
    ``POST /api/models/{repo}/commit/{rev}`` (the NDJSON commit with base64
    file contents). Write calls need ``Authorization: Bearer <FakeHub.token>``.

Faults
    :meth:`FakeHub.add_fault` makes the next matching request(s) fail:
    ``"status"`` (e.g. 500), ``"delay"`` (sleep before answering: client
    timeouts), ``"cut"`` (announce the full length, send part of the body,
    drop the connection), ``"short"`` (a complete response whose body is
    truncated: ``Content-Length`` matches the short body), ``"tamper"`` (same
    length, flipped bytes; or the given ``body`` instead of the file: wrong
    bytes that still parse), ``"drip"`` (the body in ``chunk``-byte pieces,
    ``seconds`` apart: a slow server, to kill a client mid-download).
    :func:`unused_endpoint` gives a URL on which nothing listens (connection
    refused); :meth:`FakeHub.redirect_cdn` points the LFS redirects at it.

Every request is logged (:attr:`FakeHub.requests`, :meth:`FakeHub.count`),
with the body bytes actually sent (:attr:`RequestRecord.sent`).
"""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import hashlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs
from urllib.parse import quote
from urllib.parse import unquote
from urllib.parse import urlsplit

__all__ = ["FakeHub", "Fault", "RequestRecord", "git_blob_id", "unused_endpoint"]

LFS_PATTERNS = ("*.h5", "*.keras", "*.png", "*.bin", "*.npz", "*.safetensors")

GITATTRIBUTES = b"".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n".encode() for pattern in LFS_PATTERNS
)


def git_blob_id(content: bytes) -> str:
    """The git object id of a blob (what the Hub returns as a regular file's ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def unused_endpoint() -> str:
    """``http://127.0.0.1:<port>`` on which nothing listens: connecting is refused at once.

    The port is taken from the kernel and released; nothing else on this loopback
    binds it meanwhile in practice (ephemeral ports are handed out round-robin).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _is_lfs(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatch(name, pattern) for pattern in LFS_PATTERNS)


def _lfs_pointer(content: bytes) -> bytes:
    sha = hashlib.sha256(content).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(content)}\n".encode()


@dataclasses.dataclass
class Fault:
    """A fault injected into matching requests.

    ``times`` is how many requests it affects (``None``: all of them).
    ``filename`` matches the last path component (shell pattern); ``role``
    is ``"hub"``, ``"cdn"`` or ``None`` (both).
    """

    kind: str
    method: str = "GET"
    filename: str | None = None
    role: str | None = None
    times: int | None = 1
    status: int = 500
    seconds: float = 0.0
    keep: float = 0.5  # fraction of the body sent by "cut" / "short"
    body: bytes | None = None  # "tamper": served instead of the file
    chunk: int = 256  # "drip": bytes per piece
    hits: int = 0

    def matches(self, role, method, filename):
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method != "*" and self.method != method:
            return False
        if self.role is not None and self.role != role:
            return False
        if self.filename is not None and not fnmatch.fnmatch(filename or "", self.filename):
            return False
        return True


@dataclasses.dataclass
class RequestRecord:
    role: str
    method: str
    path: str
    filename: str | None
    range: str | None
    status: int | None = None
    fault: str | None = None
    started: float = dataclasses.field(default_factory=time.monotonic)
    sent: int = 0  # body bytes written to the socket


@dataclasses.dataclass
class _Commit:
    oid: str
    files: dict
    parent: str | None
    message: str


class _Repo:
    def __init__(self, repo_id, private=False):
        self.repo_id = repo_id
        self.private = private
        self.commits = {}
        self.refs = {}

    def resolve(self, revision):
        if revision in self.refs:
            return self.commits[self.refs[revision]]
        return self.commits.get(revision)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, hub, role):
        self.hub = hub
        self.role = role
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request, client_address):  # clients hanging up mid-fault are expected
        pass


class FakeHub:
    """The fake Hub: two loopback servers (hub + CDN) sharing one in-memory store."""

    token = "hf_fake_write_token"

    def __init__(self):
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self.repos = {}
        self.blobs = {}  # sha256 -> bytes (the CDN's content-addressed store)
        self.requests = []
        self.faults = []
        self.commit_counter = 0
        self._servers = []
        self._threads = []
        self.endpoint = None
        self.cdn_endpoint = None

    # ------------------------------------------------------------------ lifecycle
    def start(self):
        for role in ("hub", "cdn"):
            server = _Server(self, role)
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"fake-{role}", daemon=True)
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        self.endpoint = f"http://127.0.0.1:{self._servers[0].server_address[1]}"
        self.cdn_endpoint = f"http://127.0.0.1:{self._servers[1].server_address[1]}"
        return self

    def stop(self):
        self._stop.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def sleep(self, seconds):
        """Sleep that ends early when the server stops."""
        self._stop.wait(seconds)

    # ------------------------------------------------------------------ content
    def create_repo(self, repo_id, *, private=False):
        """Create a repository with an initial commit holding ``.gitattributes`` (like the Hub)."""
        with self._lock:
            if repo_id in self.repos:
                return False
            repo = _Repo(repo_id, private)
            self.repos[repo_id] = repo
            self._new_commit(repo, {".gitattributes": GITATTRIBUTES}, parent=None, branch="main",
                             message="initial commit")
            return True

    def _new_oid(self, repo_id, files, parent, message):
        self.commit_counter += 1
        seed = json.dumps([repo_id, parent, message, self.commit_counter,
                           sorted((p, hashlib.sha256(c).hexdigest()) for p, c in files.items())])
        return hashlib.sha1(seed.encode()).hexdigest()

    def _new_commit(self, repo, files, *, parent, branch, message):
        oid = self._new_oid(repo.repo_id, files, parent, message)
        repo.commits[oid] = _Commit(oid, dict(files), parent, message)
        repo.refs[branch] = oid
        for path, content in files.items():
            if _is_lfs(path):
                self.blobs[hashlib.sha256(content).hexdigest()] = content
        return oid

    def commit(self, repo_id, files, *, branch="main", message="update", deletions=()):
        """Commit ``{path: bytes}`` on top of ``branch`` (the repo is created if needed); return the oid."""
        with self._lock:
            if repo_id not in self.repos:
                self.create_repo(repo_id)
            repo = self.repos[repo_id]
            parent = repo.refs.get(branch) or repo.refs["main"]
            tree = dict(repo.commits[parent].files)
            for path in deletions:
                tree.pop(path, None)
            tree.update({p: bytes(c) for p, c in files.items()})
            return self._new_commit(repo, tree, parent=parent, branch=branch, message=message)

    def commit_folder(self, repo_id, folder, **kwargs):
        """Commit every regular file of a local folder (top level)."""
        from pathlib import Path

        files = {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir()) if p.is_file()}
        return self.commit(repo_id, files, **kwargs)

    def head(self, repo_id, branch="main"):
        with self._lock:
            return self.repos[repo_id].refs[branch]

    def file(self, repo_id, path, revision="main"):
        with self._lock:
            commit = self.repos[repo_id].resolve(revision)
            return commit.files[path]

    def files(self, repo_id, revision="main"):
        with self._lock:
            return dict(self.repos[repo_id].resolve(revision).files)

    # ------------------------------------------------------------------ faults & log
    def add_fault(self, kind, *, method="GET", filename=None, role=None, times=1, status=500,
                  seconds=0.0, keep=0.5, body=None, chunk=256):
        """Inject a fault (see the module docstring); returns the :class:`Fault`."""
        if kind not in ("status", "delay", "cut", "short", "tamper", "drip"):
            raise ValueError(f"unknown fault kind {kind!r}")
        fault = Fault(kind, method=method, filename=filename, role=role, times=times, status=status,
                      seconds=seconds, keep=keep, body=None if body is None else bytes(body), chunk=chunk)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self):
        with self._lock:
            self.faults.clear()

    def redirect_cdn(self, endpoint=None):
        """Send the LFS redirects to ``endpoint`` (e.g. :func:`unused_endpoint`); None: back to the real CDN."""
        with self._lock:
            self.cdn_endpoint = endpoint or f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    def _take_fault(self, role, method, filename):
        with self._lock:
            for fault in self.faults:
                if fault.matches(role, method, filename):
                    fault.hits += 1
                    return fault
        return None

    def _log(self, record):
        with self._lock:
            self.requests.append(record)

    def count(self, method=None, filename=None, role=None, status=None):
        """How many logged requests match (``filename`` is a shell pattern on the last path part)."""
        with self._lock:
            records = list(self.requests)
        return sum(
            1
            for r in records
            if (method is None or r.method == method)
            and (role is None or r.role == role)
            and (status is None or r.status == status)
            and (filename is None or fnmatch.fnmatch(r.filename or "", filename))
        )

    def clear_log(self):
        with self._lock:
            self.requests.clear()


def record_sent(record, count):
    if record is not None:
        record.sent += count


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeHub/1.0"

    def log_message(self, format, *args):  # keep test output clean
        pass

    @property
    def hub(self) -> FakeHub:
        return self.server.hub

    @property
    def role(self) -> str:
        return self.server.role

    # ------------------------------------------------------------------ plumbing
    def _record(self, filename=None):
        record = RequestRecord(self.role, self.command, self.path, filename, self.headers.get("Range"))
        self.hub._log(record)
        return record

    def _send(self, status, body=b"", headers=None, *, record=None, head=False):
        if record is not None:
            record.status = status
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)
            record_sent(record, len(body))

    def _json(self, status, payload, *, record=None, headers=None):
        body = json.dumps(payload).encode()
        self._send(status, body, {"Content-Type": "application/json", **(headers or {})}, record=record,
                   head=self.command == "HEAD")

    def _error(self, status, code, message, *, record=None, headers=None):
        extra = {"X-Error-Message": message, **(headers or {})}
        if code:
            extra["X-Error-Code"] = code
        self._json(status, {"error": message}, record=record, headers=extra)

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self):
        return self.headers.get("Authorization") == f"Bearer {self.hub.token}"

    def _apply_pre_fault(self, fault, record):
        """Faults acting before the normal answer. Returns True when the request is answered."""
        if fault is None:
            return False
        record.fault = fault.kind
        if fault.kind == "delay":
            self.hub.sleep(fault.seconds)
            return False
        if fault.kind == "status":
            self._send(fault.status, b"" if self.command == "HEAD" else b"fake hub failure",
                       {"Content-Type": "text/plain"}, record=record, head=self.command == "HEAD")
            return True
        return False

    def _serve_bytes(self, content, headers, record, fault):
        """Serve ``content`` honouring Range, and body faults (cut/short/tamper)."""
        status = 200
        body = content
        range_header = self.headers.get("Range")
        headers = {"Accept-Ranges": "bytes", "Content-Type": "application/octet-stream", **headers}
        if range_header and range_header.startswith("bytes="):
            start_text, _, end_text = range_header[len("bytes="):].partition("-")
            start = int(start_text or 0)
            end = int(end_text) if end_text else len(content) - 1
            if start >= len(content):
                self._send(416, b"", {"Content-Range": f"bytes */{len(content)}"}, record=record)
                return
            body = content[start:end + 1]
            status = 206
            headers["Content-Range"] = f"bytes {start}-{start + len(body) - 1}/{len(content)}"
        head = self.command == "HEAD"
        if fault is not None and not head and fault.kind in ("cut", "short", "tamper", "drip"):
            keep = int(len(body) * fault.keep)
            if fault.kind == "tamper" and fault.body is not None:
                body = fault.body
                headers.pop("Content-Range", None)
                status = 200
            elif fault.kind == "tamper":
                body = bytes(b ^ 0xFF for b in body[:16]) + body[16:]
            elif fault.kind == "drip":
                record.status = status
                self.send_response(status)
                headers["Content-Length"] = str(len(body))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                for start in range(0, len(body), max(1, fault.chunk)):
                    piece = body[start:start + max(1, fault.chunk)]
                    self.wfile.write(piece)
                    self.wfile.flush()
                    record_sent(record, len(piece))
                    if start + len(piece) < len(body):
                        self.hub.sleep(fault.seconds)
                return
            elif fault.kind == "short":
                body = body[:keep]
                headers.pop("Content-Range", None)
            elif fault.kind == "cut":
                record.status = status
                self.send_response(status)
                headers["Content-Length"] = str(len(body))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body[:keep])
                self.wfile.flush()
                record_sent(record, keep)
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
        self._send(status, body, headers, record=record, head=head)

    # ------------------------------------------------------------------ verbs
    def do_HEAD(self):
        self._dispatch()

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def _dispatch(self):
        try:
            if self.role == "cdn":
                self._cdn()
            else:
                self._hub()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # ------------------------------------------------------------------ CDN
    def _cdn(self):
        parts = urlsplit(self.path).path.strip("/").split("/")
        filename = unquote(parts[-1]) if parts else None
        record = self._record(filename)
        fault = self.hub._take_fault("cdn", self.command, filename)
        if self._apply_pre_fault(fault, record):
            return
        if len(parts) != 3 or parts[0] != "blobs" or self.command not in ("GET", "HEAD"):
            self._send(404, b"not found", record=record, head=self.command == "HEAD")
            return
        content = self.hub.blobs.get(parts[1])
        if content is None:
            self._send(404, b"no such blob", record=record, head=self.command == "HEAD")
            return
        self._serve_bytes(content, {"ETag": f'"{parts[1]}"'}, record, fault)

    # ------------------------------------------------------------------ hub
    def _hub(self):
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        if len(parts) >= 4 and parts[2] == "resolve" and self.command in ("GET", "HEAD"):
            self._resolve(parts)
        elif parts[:1] == ["api"]:
            self._api(parts, parse_qs(url.query))
        else:
            record = self._record()
            self._error(404, None, f"no route for {self.command} {url.path}", record=record)

    def _resolve(self, parts):
        repo_id = f"{parts[0]}/{parts[1]}"
        revision = parts[3]
        path = "/".join(parts[4:])
        filename = parts[-1] if len(parts) > 4 else None
        record = self._record(filename)
        fault = self.hub._take_fault("hub", self.command, filename)
        if self._apply_pre_fault(fault, record):
            return
        with self.hub._lock:
            repo = self.hub.repos.get(repo_id)
            commit = repo.resolve(revision) if repo is not None else None
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found", record=record)
            return
        if commit is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", record=record)
            return
        if path not in commit.files:
            self._error(404, "EntryNotFound", f"{path} does not exist on \"{revision}\"", record=record,
                        headers={"X-Repo-Commit": commit.oid})
            return
        content = commit.files[path]
        if _is_lfs(path):
            sha = hashlib.sha256(content).hexdigest()
            pointer = _lfs_pointer(content)
            location = f"{self.hub.cdn_endpoint}/blobs/{sha}/{quote(filename)}"
            self._send(302, b"", {
                "Location": location,
                "ETag": f'"{git_blob_id(pointer)}"',
                "X-Linked-Etag": f'"{sha}"',
                "X-Linked-Size": str(len(content)),
                "X-Repo-Commit": commit.oid,
            }, record=record, head=self.command == "HEAD")
            return
        self._serve_bytes(content, {"ETag": f'"{git_blob_id(content)}"', "X-Repo-Commit": commit.oid},
                          record, fault)

    def _api(self, parts, query):
        record = self._record(parts[-1] if parts else None)
        fault = self.hub._take_fault("hub", self.command, parts[-1] if parts else None)
        if self._apply_pre_fault(fault, record):
            return
        body = self._read_body() if self.command == "POST" else b""
        # POST /api/repos/create
        if parts == ["api", "repos", "create"] and self.command == "POST":
            return self._create_repo(body, record)
        if parts == ["api", "validate-yaml"] and self.command == "POST":
            return self._validate_yaml(body, record)
        # /api/models/{org}/{name}/{action}/{revision}[/...]
        if len(parts) >= 4 and parts[1] == "models":
            repo_id = f"{parts[2]}/{parts[3]}"
            action = parts[4] if len(parts) > 4 else "info"
            revision = parts[5] if len(parts) > 5 else "main"
            with self.hub._lock:
                repo = self.hub.repos.get(repo_id)
            if repo is None:
                return self._error(404, "RepoNotFound", "Repository not found", record=record)
            if action == "preupload" and self.command == "POST":
                return self._preupload(repo, revision, body, record)
            if action == "commit" and self.command == "POST":
                return self._commit(repo, revision, body, record)
            if action in ("info", "revision") and self.command == "GET":
                return self._repo_info(repo, revision, record)
            if action == "tree" and self.command == "GET":
                return self._tree(repo, revision, "/".join(parts[6:]), record)
        return self._error(404, None, f"no route for {self.command} {self.path}", record=record)

    def _create_repo(self, body, record):
        if not self._authorized():
            return self._error(401, None, "Invalid credentials in Authorization header", record=record)
        payload = json.loads(body or b"{}")
        name, org = payload.get("name"), payload.get("organization")
        if not name or not org:
            return self._error(400, None, "name and organization are required", record=record)
        repo_id = f"{org}/{name}"
        created = self.hub.create_repo(repo_id, private=payload.get("visibility") == "private"
                                       or bool(payload.get("private")))
        url = f"{self.hub.endpoint}/{repo_id}"
        if not created:
            return self._json(409, {"error": "You already created this model repo", "url": url}, record=record)
        return self._json(200, {"url": url, "name": repo_id, "id": repo_id}, record=record)

    def _validate_yaml(self, body, record):
        import yaml

        content = json.loads(body or b"{}").get("content", "")
        if content.startswith("---"):
            header = content.split("---", 2)[1]
            try:
                data = yaml.safe_load(header)
                if not isinstance(data, dict):
                    raise ValueError("metadata is not a mapping")
            except Exception as err:  # noqa: BLE001
                return self._json(400, {"errors": [{"message": f"Invalid YAML: {err}"}], "warnings": []},
                                  record=record)
        return self._json(200, {"errors": [], "warnings": []}, record=record)

    def _preupload(self, repo, revision, body, record):
        if not self._authorized():
            return self._error(401, None, "Invalid credentials in Authorization header", record=record)
        commit = repo.resolve(revision)
        if commit is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", record=record)
        files = json.loads(body)["files"]
        answer = []
        for item in files:
            existing = commit.files.get(item["path"])
            answer.append({
                "path": item["path"],
                "uploadMode": "regular",  # LFS / Xet uploads are not emulated
                "shouldIgnore": False,
                "oid": git_blob_id(existing) if existing is not None else None,
            })
        return self._json(200, {"files": answer, "commitOid": commit.oid}, record=record)

    def _commit(self, repo, revision, body, record):
        if not self._authorized():
            return self._error(401, None, "Invalid credentials in Authorization header", record=record)
        if self.headers.get("Content-Type") != "application/x-ndjson":
            return self._error(400, None, "expected application/x-ndjson", record=record)
        header, added, deleted = None, {}, []
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                if value.get("encoding") != "base64":
                    return self._error(400, None, "only base64 file contents are supported", record=record)
                added[value["path"]] = base64.b64decode(value["content"])
            elif key in ("deletedFile", "deletedFolder"):
                deleted.append(value["path"])
            else:
                return self._error(422, None, f"unsupported commit operation {key!r} (LFS is not emulated)",
                                   record=record)
        if header is None or not header.get("summary"):
            return self._error(400, None, "commit header with a summary is required", record=record)
        with self.hub._lock:
            if revision not in repo.refs:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", record=record)
            parent_commit = header.get("parentCommit")
            if parent_commit and parent_commit != repo.refs[revision]:
                return self._error(412, None, "parent commit is not the head of the branch", record=record)
            oid = self.hub.commit(repo.repo_id, added, branch=revision, message=header["summary"],
                                  deletions=deleted)
        return self._json(200, {
            "success": True,
            "commitOid": oid,
            "commitUrl": f"{self.hub.endpoint}/{repo.repo_id}/commit/{oid}",
            "hookOutput": "",
        }, record=record)

    def _repo_info(self, repo, revision, record):
        commit = repo.resolve(revision)
        if commit is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", record=record)
        return self._json(200, {
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "sha": commit.oid,
            "private": repo.private,
            "siblings": [{"rfilename": path} for path in sorted(commit.files)],
            "lastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        }, record=record)

    def _tree(self, repo, revision, prefix, record):
        commit = repo.resolve(revision)
        if commit is None:
            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", record=record)
        entries = []
        for path, content in sorted(commit.files.items()):
            if prefix and not path.startswith(prefix.rstrip("/") + "/"):
                continue
            entry = {"type": "file", "path": path, "size": len(content), "oid": git_blob_id(content)}
            if _is_lfs(path):
                pointer = _lfs_pointer(content)
                entry["oid"] = git_blob_id(pointer)
                entry["lfs"] = {"oid": hashlib.sha256(content).hexdigest(), "size": len(content),
                                "pointerSize": len(pointer)}
            entries.append(entry)
        return self._json(200, entries, record=record)
