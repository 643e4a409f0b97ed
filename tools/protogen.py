"""Regenerate the Python code of the wire contract from protos/mmer/v1/*.proto.

A developer tool, not runtime code: `make protos` runs it on the repository, and the test that
proves the committed code is current runs it into a scratch directory.

    python tools/protogen.py [OUT_DIR]   # default: protos/
"""

from __future__ import annotations

import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent.parent / "protos"


def generate(out_dir: Path, proto_root: Path = PROTO_ROOT) -> list[Path]:
    """Run protoc (from grpcio-tools) on every .proto; return the files written."""
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(proto_root)) for p in (proto_root / "mmer" / "v1").glob("*.proto"))
    out_dir.mkdir(parents=True, exist_ok=True)
    include = str(Path(protoc.__file__).parent / "_proto")
    args = [
        "protoc",
        f"-I{proto_root}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {protos}")
    return sorted(p for p in (out_dir / "mmer" / "v1").glob("*_pb2*.py*"))


def main() -> int:
    """Generate into the directory named on the command line (default: protos/); print each file."""
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else PROTO_ROOT
    for path in generate(out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
