#!/bin/sh
# Regenerates api_pb2.py, api_pb2.pyi and api_pb2_grpc.py from api.proto (see README.md).
# Run from anywhere; needs grpcio-tools (a dev tool, not a runtime dependency).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
python=${PYTHON:-python3}
cd "$here/.."
"$python" -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. \
    podresources/api.proto
cd "$here"
# package-relative import, so the modules load as poolwatch.exporters.node.attribution.podresources.*
sed -i 's/^from podresources import api_pb2 /from . import api_pb2 /' api_pb2_grpc.py
# generated code is kept as generated: ruff neither lints nor reformats it
for f in api_pb2.py api_pb2.pyi api_pb2_grpc.py; do
    printf '# ruff: noqa\n# fmt: off\n' | cat - "$f" > "$f.tmp" && mv "$f.tmp" "$f"
done
