#!/usr/bin/env bash
# Builds Isthmus and runs its demo: a two-site personal cluster on loopback with a real client and server.
set -euo pipefail
cd "$(dirname "$0")"
dotnet build src/Isthmus.Cli -c Release -nologo -clp:ErrorsOnly -v:q
exec src/Isthmus.Cli/bin/Release/net10.0/isthmus demo "$@"
