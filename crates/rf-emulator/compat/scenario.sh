#!/usr/bin/env bash
# Compatibility scenario: the official Python client (inference-cli 1.8.3)
# against the emulator, end to end, through API_BASE_URL. Not part of the
# default test run (it needs Python and network access to PyPI on first use).
#
#   bash crates/rf-emulator/compat/scenario.sh [VENV_DIR]
#
# VENV_DIR (default: target/compat-venv) is created and inference-cli==1.8.3
# installed into it when it has no `inference` yet. Exits non-zero on the
# first failed check.
set -euo pipefail
cd "$(dirname "$0")/../../.."
VENV="${1:-target/compat-venv}"
if [ ! -x "$VENV/bin/inference" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "inference-cli==1.8.3"
fi
INF="$VENV/bin/inference"
PY="$VENV/bin/python"

WORK="$(mktemp -d)"
PORT="${RF_COMPAT_PORT:-19731}"
cargo build --quiet -p rf-emulator --example serve
SERVE="$(cargo metadata --format-version 1 --no-deps | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug/examples/serve"
"$SERVE" --addr "127.0.0.1:$PORT" --data-dir "$WORK/data" --key compat-key=compat-ws >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
FILES_PID=""
cleanup() {
    kill -INT "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    if [ -n "$FILES_PID" ]; then kill "$FILES_PID" 2>/dev/null || true; wait "$FILES_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
    if "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null; then break; fi
    sleep 0.1
done

export API_BASE_URL="http://127.0.0.1:$PORT" ROBOFLOW_API_KEY=compat-key COLUMNS=200
fail() { echo "compat: FAILED: $*" >&2; echo "--- server log" >&2; tail -20 "$WORK/server.log" >&2; exit 1; }
step() { echo "compat: $*"; }
# has PATTERN CMD...: CMD's output contains PATTERN (output captured first:
# `cmd | grep -q` would break the pipe under pipefail)
has() { local pattern="$1" out; shift; out="$("$@" 2>&1)" || return 1; grep -q -- "$pattern" <<<"$out"; }

"$PY" - "$WORK" <<'PY'
import os, struct, sys, zlib
work = sys.argv[1]
def png(w, h, seed):
    raw = b"".join(b"\x00" + bytes((seed + x + y) % 256 for x in range(w * 3)) for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
for d, n in (("small", 5), ("big", 40)):
    os.makedirs(os.path.join(work, d), exist_ok=True)
    for i in range(n):
        open(os.path.join(work, d, f"{d}{i}.png"), "wb").write(png(16, 12, i))
PY

step "single-image uploads (5 images)"
"$INF" rf-cloud data-staging create-batch-of-images --images-dir "$WORK/small" --batch-id compat-small >/dev/null || fail "create-batch-of-images small"
step "bulk shard upload (40 images)"
"$INF" rf-cloud data-staging create-batch-of-images --images-dir "$WORK/big" --batch-id compat-big >/dev/null || fail "create-batch-of-images big"
for _ in $(seq 1 100); do
    has "Files Count.* 40 " "$INF" rf-cloud data-staging show-batch-details --batch-id compat-big && break
    sleep 0.2
done
has "Files Count.* 40 " "$INF" rf-cloud data-staging show-batch-details --batch-id compat-big || fail "count of compat-big"
has compat-small "$INF" rf-cloud data-staging list-batches || fail "list-batches"
has "small0.png" "$INF" rf-cloud data-staging list-batch-content --batch-id compat-small || fail "list-batch-content"
has "shard-ingested" "$INF" rf-cloud data-staging list-ingest-details --batch-id compat-big || fail "list-ingest-details"

step "references ingest (loopback URLs fetched, others refused)"
FILES_PORT=$((PORT + 1))
(cd "$WORK/small" && exec "$PY" -m http.server "$FILES_PORT" --bind 127.0.0.1) >/dev/null 2>&1 &
FILES_PID=$!
for _ in $(seq 1 50); do
    "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $FILES_PORT), 0.2)" 2>/dev/null && break
    sleep 0.1
done
{
    echo "{\"name\": \"r0.png\", \"url\": \"http://127.0.0.1:$FILES_PORT/small0.png\"}"
    echo "{\"name\": \"r1.png\", \"url\": \"http://127.0.0.1:$FILES_PORT/small1.png\"}"
    echo '{"name": "far.png", "url": "https://files.example.net/far.png"}'
} >"$WORK/refs.jsonl"
has "Your ingest ID" "$INF" rf-cloud data-staging create-batch-of-images --data-source references-file --references "$WORK/refs.jsonl" --batch-id compat-refs || fail "references ingest"
for _ in $(seq 1 100); do
    has "Files Count.* 2 " "$INF" rf-cloud data-staging show-batch-details --batch-id compat-refs && break
    sleep 0.2
done
has "Files Count.* 2 " "$INF" rf-cloud data-staging show-batch-details --batch-id compat-refs || fail "count of compat-refs"
has "unsafe-url-detected" "$INF" rf-cloud data-staging list-ingest-details --batch-id compat-refs || fail "refused reference not reported"

step "job over the sharded batch, csv"
"$INF" rf-cloud batch-processing process-images-with-workflow --batch-id compat-big --workflow-id mock-detector --job-id job-compat1 --aggregation-format csv >/dev/null || fail "process-images-with-workflow"
for _ in $(seq 1 150); do
    has "job-succeeded" "$INF" rf-cloud batch-processing fetch-logs --job-id job-compat1 && break
    sleep 0.2
done
has "Stage: export" "$INF" rf-cloud batch-processing show-job-details --job-id job-compat1 || fail "show-job-details"
has "job-succeeded" "$INF" rf-cloud batch-processing fetch-logs --job-id job-compat1 || fail "job-compat1 did not succeed"
has "job-compat1" "$INF" rf-cloud batch-processing list-jobs || fail "list-jobs"

step "export of the results"
"$INF" rf-cloud data-staging export-batch --batch-id job-compat1-export-output --target-dir "$WORK/out" >/dev/null || fail "export-batch"
ROWS=$(cat "$WORK"/out/results/*.csv | grep -c "mock-detector" || true)
[ "$ROWS" = "40" ] || fail "expected 40 result rows, got $ROWS"

step "videos: upload through signed URLs, video job at maxVideoFPS, export"
if "$PY" - "$WORK" <<'PY'
import os, sys
import av, numpy as np  # shipped with inference-cli's dependencies
work = sys.argv[1]
os.makedirs(os.path.join(work, "vids"), exist_ok=True)
out = av.open(os.path.join(work, "vids", "clip.mp4"), mode="w")
s = out.add_stream("mpeg4", rate=25)
s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
for i in range(50):
    img = np.zeros((120, 160, 3), dtype=np.uint8)
    img[:, :, 0] = i * 5
    for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
        out.mux(p)
for p in s.encode():
    out.mux(p)
out.close()
PY
then
    "$INF" rf-cloud data-staging create-batch-of-videos --videos-dir "$WORK/vids" --batch-id compat-vids >/dev/null || fail "create-batch-of-videos"
    has "Files Count.* 1 " "$INF" rf-cloud data-staging show-batch-details --batch-id compat-vids || fail "video batch count"
    "$INF" rf-cloud batch-processing process-videos-with-workflow --batch-id compat-vids --workflow-id video-properties --job-id job-compatv --max-video-fps 5 >/dev/null || fail "process-videos-with-workflow"
    for _ in $(seq 1 100); do
        has "job-succeeded" "$INF" rf-cloud batch-processing fetch-logs --job-id job-compatv && break
        sleep 0.2
    done
    "$INF" rf-cloud data-staging export-batch --batch-id job-compatv-export-output --target-dir "$WORK/vout" >/dev/null || fail "export of the video job"
    grep -q '"frame_count":50' "$WORK"/vout/results/*.jsonl || fail "video results lack frame_count 50"
    grep -q '"sampled_fps":5.0' "$WORK"/vout/results/*.jsonl || fail "video results not sampled at 5 fps"
else
    echo "compat: (skipped: PyAV could not write a test video)"
fi

step "unknown workflow, restart, abort, trt"
"$INF" rf-cloud batch-processing process-images-with-workflow --batch-id compat-small --workflow-id not-a-workflow --job-id job-compat2 >/dev/null || fail "trigger job 2"
for _ in $(seq 1 50); do
    has "workflow-not-found" "$INF" rf-cloud batch-processing fetch-logs --job-id job-compat2 --log-severity error && break
    sleep 0.2
done
has "workflow-not-found" "$INF" rf-cloud batch-processing fetch-logs --job-id job-compat2 --log-severity error || fail "error logs of job 2"
has '"ok"' "$INF" rf-cloud batch-processing restart-job --job-id job-compat2 --max-runtime-seconds 100 || fail "restart-job"
has '"ok"' "$INF" rf-cloud batch-processing abort-job --job-id job-compat2 || fail "abort-job"
"$INF" rf-cloud batch-processing trt-compile --model-id proj/1 --device nvidia-t4 --device nvidia-l40s --job-id trt-compat >/dev/null || fail "trt-compile"

for _ in $(seq 1 50); do
    has "job-succeeded" "$INF" rf-cloud batch-processing fetch-logs --job-id trt-compat && break
    sleep 0.2
done
has "job-succeeded" "$INF" rf-cloud batch-processing fetch-logs --job-id trt-compat || fail "trt job did not succeed"

if grep -q "compat-key" "$WORK/server.log"; then fail "the api key appears in the server log"; fi
step "all checks passed"
