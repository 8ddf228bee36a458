#!/usr/bin/env bash
# pio serve: the OpenAI-compatible server, tested with the official `openai`
# client (tests/server/test_server.py). Skips (77) when python3, pytest or
# openai is missing (tools/install_deps.sh --test installs them).
set -u
PIO=${PIO:-build/pio}
SRC=${PIO_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
if ! python3 -c "import openai, pytest" 2>/dev/null; then
    echo "skip: python3 with the openai and pytest packages is needed (pip install openai pytest)"
    exit 77
fi
if [ ! -x "$PIO" ]; then
    echo "skip: $PIO not built"
    exit 77
fi
PIO="$PIO" exec python3 -m pytest -q -p no:cacheprovider "$SRC/tests/server/test_server.py" "$@"
