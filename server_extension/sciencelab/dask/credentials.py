"""Each cluster's TLS credentials: a certificate made for that cluster alone, required of everyone.

Every cluster the manager starts itself (local, HTCondor, SLURM, Kubernetes) gets a certificate and
key of its own, generated when it is created (`distributed.Security.temporary`: self-signed, so it
is also the cluster's certificate authority). Its scheduler listens on `tls://` only and requires
the same certificate of every peer (mutual TLS, `require_encryption`): its workers, this server, and
the notebook's client. A client without the cluster's credentials, or with another cluster's, is
refused during the TLS handshake, before any Dask message is read.

The credentials are files only the owner can read (a 0700 directory, 0600 files), which the connect
code names: the notebook reads them, they are never pasted into it. dask-gateway clusters need none
of this: the gateway makes and serves each cluster's credentials itself, to the authenticated user.

`make_security`, `make_worker_tls_environment` and `tls_client_recipe` are pure; `write_credentials`
and `remove_credentials` do the file I/O.
"""

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from distributed import Security

from .connect import Call, ConnectRecipe, Variable

CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"


@dataclass(frozen=True)
class TlsFiles:
    """A cluster's certificate (its own CA) and key, as files on this server or as a job names them."""

    cert: str
    key: str


def make_security(files: TlsFiles) -> Security:
    """The cluster's `Security` for every role (scheduler, worker, client), encryption required."""
    return Security(
        tls_ca_file=files.cert,
        tls_scheduler_cert=files.cert,
        tls_scheduler_key=files.key,
        tls_worker_cert=files.cert,
        tls_worker_key=files.key,
        tls_client_cert=files.cert,
        tls_client_key=files.key,
        require_encryption=True,
    )


def make_worker_tls_environment(files: TlsFiles) -> dict[str, str]:
    """Dask configuration variables that give a worker process the cluster's credentials."""
    return {
        "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
        "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": files.cert,
        "DASK_DISTRIBUTED__COMM__TLS__WORKER__CERT": files.cert,
        "DASK_DISTRIBUTED__COMM__TLS__WORKER__KEY": files.key,
    }


def tls_client_recipe(address: str, files: TlsFiles) -> ConnectRecipe:
    """A notebook client that presents the cluster's certificate, read from its files (pure)."""
    security = Call(
        "security",
        "Security",
        kwargs=(
            ("tls_ca_file", files.cert),
            ("tls_client_cert", files.cert),
            ("tls_client_key", files.key),
            ("require_encryption", True),
        ),
    )
    client = Call("client", "Client", (address,), (("security", Variable("security")),))
    return ConnectRecipe("dask.distributed", "Client", (security, client), also_import=("Security",))


def write_credentials(directory: Path) -> TlsFiles:
    """Make a new certificate and key for one cluster and write them into `directory`, owner-only.

    The directory is created with mode 0700 (an existing one is made so) and the files with 0600
    from the start, so they are never readable by others, even for a moment.
    """
    security = Security.temporary()
    directory.mkdir(parents=True, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    files = TlsFiles(cert=str(directory / CERT_FILE), key=str(directory / KEY_FILE))
    for path, contents in ((files.cert, security.tls_ca_file), (files.key, security.tls_scheduler_key)):
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
            file.write(contents)
    return files


def remove_credentials(directory: Path):
    """Delete a cluster's folder with its credentials once nothing needs them (shut down or reaped)."""
    shutil.rmtree(directory, ignore_errors=True)
