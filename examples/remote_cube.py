"""Recipe: work on a cube that lives on a server or in a bucket, without downloading it.

    python examples/remote_cube.py CUBE

Needs ``pip install "nersemble-cube[remote]"``.

Here a plain static file server on 127.0.0.1 stands in for the server (any web server, CDN or
object store that answers HTTP Range requests will do). Opening reads the consolidated metadata and
the small coordinates; each frame then costs the request for its shard's index and the one for its
bytes. With an object store, the same calls take ``s3://bucket/cube.zarr`` (or ``gs://``, ``az://``)
and its credentials come from the environment (AWS_* variables, ~/.aws, instance roles), e.g.::

    tree = nersemble_cube.open("s3://my-bucket/nersemble.zarr")
    tree = nersemble_cube.open("s3://public-bucket/nersemble.zarr", storage_options={"anon": True})
    nersemble-cube convert ~/nersemble s3://my-bucket/nersemble.zarr     # writes there directly
"""

import sys
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

import nersemble_cube

cube = Path(sys.argv[1]).resolve()


class Server(SimpleHTTPRequestHandler):
    """A static file server that answers single Range requests (as S3, GCS and CDNs do)."""

    requests = 0

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        Server.requests += 1
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            return self.send_error(404)
        data = path.read_bytes()
        first, _, last = self.headers.get("Range", "bytes=0-").removeprefix("bytes=").partition("-")
        part = data[-int(last):] if first == "" else data[int(first):int(last) + 1 if last else None]
        self.send_response(206 if "Range" in self.headers else 200)
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        self.wfile.write(part)


server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Server, directory=str(cube.parent)))
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_address[1]}/{cube.name}"

tree = nersemble_cube.open(url)  # lazy, like a local cube
print(f"opened {url} with {Server.requests} requests")
seq = tree["nvs/388/sequences/GLASSES"]
serial = str(seq.camera.values[0])
before = Server.requests
frame = seq.images.sel(camera=serial, time=2).values
print(f"frame {frame.shape} {frame.dtype} with {Server.requests - before} requests")
# inside DataLoader workers: read_frame, no DataTree, no dask
same = nersemble_cube.read_frame(url, "nvs/388/sequences/GLASSES", serial, 2)
local = nersemble_cube.read_frame(cube, "nvs/388/sequences/GLASSES", serial, 2)
print(f"read_frame equals the local cube: {np.array_equal(same, local) and np.array_equal(frame, local)}")
server.shutdown()
