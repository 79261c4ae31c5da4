"""Missing datasets downloaded as RecBole does (its URL table, zip layout, renaming),
served by a real HTTP server on the loopback address: the run downloads, trains and
tests; a second run makes no request; a broken download writes nothing and fails in
one line; a refused connection gives the offline line; ``download: False`` never asks."""
import io
import os
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from recbole_anchor import cli
from recbole_anchor.data import download
from recbole_anchor.data.atomic_files import check_dataset_files
from recbole_anchor.errors import DatasetDownloadError, DatasetNotFoundError
from recbole_anchor.quick_start import run_recbole_anchor

from conftest import make_config
from tiny_dataset import tiny_args, write_tiny_dataset

ZIP_PATH = "/ProcessedDatasets/Shop/Tiny_Shop.zip"


class Server:
    """Serves ``files`` (URL path -> bytes) and records the paths requested.
    ``cut`` sends only the first half of each body after announcing its full length."""

    def __init__(self):
        self.files, self.requests, self.cut = {}, [], False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if server.cut else body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    running = Server()
    yield running
    running.close()


def recbole_zip(tmp_path):
    """A zip in RecBole's layout: ``Tiny_Shop.inter`` at the top (RecBole renames it
    to the dataset's name), and the interaction file's bytes."""
    source = write_tiny_dataset(tmp_path / "source", name="Tiny_Shop")
    inter = (source / "Tiny_Shop.inter").read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Tiny_Shop.inter", inter)
    return buffer.getvalue(), inter


@pytest.fixture
def table(monkeypatch):
    """Point RecBole's URL table at the test's server: ``table[name] = url``."""
    urls = {}
    monkeypatch.setattr(download, "url_table", lambda: urls)
    return urls


def closed_port_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/ProcessedDatasets/MovieLens/ml-20m.zip"


def tiny_run(data_path, **overrides):
    return run_recbole_anchor(
        "AnchorMultVAE", "tiny-shop",
        cmd_args=tiny_args(data_path, epochs=1, state="ERROR", seed=3, **overrides),
    )


def test_run_downloads_trains_and_tests_then_reads_the_local_copy(workdir, server, table):
    body, inter = recbole_zip(workdir)
    server.files[ZIP_PATH] = body
    table["tiny-shop"] = server.url + ZIP_PATH
    data = workdir / "data"

    first = tiny_run(data)
    assert server.requests == [ZIP_PATH]
    assert os.listdir(data) == ["tiny-shop"]  # no staging folder left beside it
    assert os.listdir(data / "tiny-shop") == ["tiny-shop.inter"]  # RecBole's renaming
    assert (data / "tiny-shop" / "tiny-shop.inter").read_bytes() == inter
    assert set(first["test_result"]) >= {"ndcg@10", "recall@10"}

    second = tiny_run(data)
    assert server.requests == [ZIP_PATH]  # no second request
    assert second["test_result"] == pytest.approx(first["test_result"])


def test_download_into_an_existing_empty_folder(workdir, server, table):
    body, inter = recbole_zip(workdir)
    server.files[ZIP_PATH] = body
    table["tiny-shop"] = server.url + ZIP_PATH
    (workdir / "data" / "tiny-shop").mkdir(parents=True)
    check_dataset_files(make_config(dataset="tiny-shop", data_path=str(workdir / "data")))
    assert (workdir / "data" / "tiny-shop" / "tiny-shop.inter").read_bytes() == inter
    assert os.listdir(workdir / "data") == ["tiny-shop"]


@pytest.mark.parametrize(
    "broken, reason, root_exists",
    [
        ("file", "not a complete zip file", False),     # the server's copy is truncated
        ("file", "not a complete zip file", True),
        ("connection", "received", False),              # the transfer stops half way
        ("layout", "the zip holds no Tiny_Shop.inter or tiny-shop.inter", True),
    ],
)
def test_broken_download_writes_nothing_and_fails_in_one_line(
    workdir, server, table, broken, reason, root_exists
):
    body, _ = recbole_zip(workdir)
    if broken == "file":
        body = body[: len(body) // 2]
    elif broken == "layout":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("readme.txt", "no atomic files here")
        body = buffer.getvalue()
    server.cut = broken == "connection"
    server.files[ZIP_PATH] = body
    url = server.url + ZIP_PATH
    table["tiny-shop"] = url
    data = workdir / "data"
    if root_exists:
        data.mkdir()
    with pytest.raises(DatasetDownloadError) as caught:
        check_dataset_files(make_config(dataset="tiny-shop", data_path=str(data)))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("dataset 'tiny-shop' not found")
    assert f"downloading it from {url} failed (" in message and reason in message
    assert "--data_path=DIR" in message
    # nothing written: no staging folder left, no data folder made
    assert os.listdir(data) == [] if root_exists else not data.exists()
    assert server.requests == [ZIP_PATH]


def test_refused_connection_gives_the_offline_line_and_exit_2(workdir, table, capsys):
    url = closed_port_url()
    table["ml-20m"] = url
    data = workdir / "data"
    status = cli.main(["--model=AnchorMultVAE", "--dataset=ml-20m", f"--data_path={data}"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"downloading it from {url} failed (" in err and "Connection refused" in err
    assert "pass --data_path=DIR where DIR/ml-20m/ holds its atomic files" in err
    assert (f"python -m recbole_anchor.data.convert movielens ml-20m/ratings.csv "
            f"--output {data} --name ml-20m") in err
    assert not data.exists()


def test_download_false_never_requests(workdir, server, table):
    body, _ = recbole_zip(workdir)
    server.files[ZIP_PATH] = body
    table["tiny-shop"] = server.url + ZIP_PATH
    config = make_config(dataset="tiny-shop", data_path=str(workdir / "data"), download=False)
    with pytest.raises(DatasetNotFoundError, match="download is False; pass --download=True") as caught:
        check_dataset_files(config)
    assert not isinstance(caught.value, DatasetDownloadError)
    assert server.requests == []
    assert not (workdir / "data").exists()


def test_download_is_on_by_default_for_plugin_and_recbole_models():
    assert make_config()["download"] is True
    assert make_config(model="EASE")["download"] is True


def test_recbole_table_knows_the_headline_datasets():
    urls = download.url_table()
    assert urls["ml-20m"].endswith("/MovieLens/ml-20m.zip")
    assert urls["netflix"].endswith("/Netflix/netflix.zip")
    assert "msd" not in urls
