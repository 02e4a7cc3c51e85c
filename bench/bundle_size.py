"""Size of our built lab extension vs dask-labextension + jupyterlab-nvdashboard, gzipped JavaScript.

Our extension is built for production (`npm run build:prod`, what the wheel ships); the peers are
the prebuilt extensions of their PyPI wheels, installed into the bench environment by
`make bench-dask`. Every `.js` file a browser may load counts (remote entry, chunks, styles as
JS), each gzipped at level 9 as a server would; source maps do not. Goal: ratio <= 1.0.
`--smoke` (what `make test` runs) skips the production build and measures the extension as it is
built now: it checks in a second that the measurement works; a development build's figures mean
nothing.
"""

import argparse
import gzip
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import require_peers_venv

REPO = Path(__file__).resolve().parent.parent
OURS = REPO / "server_extension" / "sciencelab" / "labextension"
PEERS = ("dask-labextension", "jupyterlab-nvdashboard")


def gzipped_js(folder: Path) -> int:
    """Bytes of every .js file under `folder`, each gzipped."""
    return sum(len(gzip.compress(path.read_bytes(), compresslevel=9)) for path in sorted(folder.rglob("*.js")))


def installed_extension(name: str) -> Path:
    """The folder of the prebuilt lab extension `name` in the bench environment."""
    venv = require_peers_venv()
    for package in (venv / "share" / "jupyter" / "labextensions").rglob("package.json"):
        if json.loads(package.read_text()).get("name") == name:
            return package.parent
    sys.exit(f"{name} is not installed in {venv}: run `make bench-dask`")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="measure the extension as built now, without building it")
    args = parser.parse_args()
    if not args.smoke:
        subprocess.run(["npm", "run", "build:prod"], cwd=REPO, check=True, stdout=subprocess.DEVNULL)

    ours = gzipped_js(OURS / "static")
    peers = {name: gzipped_js(installed_extension(name) / "static") for name in PEERS}
    print(f"ours (@sciencelab/labextension): {ours / 1024:.1f} KiB gzipped JS")
    for name, size in peers.items():
        print(f"{name}: {size / 1024:.1f} KiB gzipped JS")
    print(f"ratio ours / ({' + '.join(PEERS)}): {ours / sum(peers.values()):.3f}  (goal <= 1.0)")
    print(f"ratio ours / {PEERS[0]} alone: {ours / peers[PEERS[0]]:.3f}")


if __name__ == "__main__":
    main()
