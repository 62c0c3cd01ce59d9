#!/bin/sh
# Retrain on the server's capture files and put the candidate in shadow mode (docs/monitoring.md).
#
#   ADMIN_TOKEN=... [TRAIN_CONFIG=...] [MODELS_DIR=models] [MATRIX=...] scripts/retrain-shadow.sh CAPTURE_DIR SYMBOL VERSION [SERVER_URL]
#
# 1. replay the capture files of SYMBOL into a training matrix (real order book, BTC, funding),
#    MATRIX (default training/out/SYMBOL-capture.csv);
# 2. train and export MODELS_DIR/VERSION.{onnx,json,golden.json} (training/train.py refuses to
#    overwrite) with TRAIN_CONFIG, default training/config/capture.json: a relative split (the
#    last 15% of the rows by time are the test split, the 15% before them validation), since the
#    captured period is not known when a config is written;
#    train.py also writes the drift reference (feature_reference) from the train-split rows;
# 3. POST /admin/shadow: the server scores the candidate beside the serving model (role="shadow"
#    in /metrics realized). Promote it later with POST /admin/reload {"model_path": "VERSION.onnx"}.
# Run from the repository root, on the machine whose models folder (MODELS_DIR: the folder of the
# server's model_path) the server reads; the admin call names the file relative to that folder.
set -eu
if [ $# -lt 3 ]; then
  sed -n '4p' "$0" >&2
  exit 2
fi
capture_dir=$1
symbol=$2
version=$3
url=${4:-http://127.0.0.1:8000}
python=${PYTHON:-/usr/bin/python3}
config=${TRAIN_CONFIG:-training/config/capture.json}
models_dir=${MODELS_DIR:-models}
matrix=${MATRIX:-training/out/$symbol-capture.csv}
# Checked before the slow steps: a missing token would otherwise fail only after training.
: "${ADMIN_TOKEN:?set ADMIN_TOKEN to the server's admin_token}"

npm run --silent replay -- --capture-dir "$capture_dir" --symbol "$symbol" --out "$matrix"
"$python" training/train.py "$config" --version "$version" --matrix "$matrix" --out "$models_dir/$version.onnx"
curl -fsS -X POST "$url/admin/shadow" -H "authorization: Bearer $ADMIN_TOKEN" \
  -H 'content-type: application/json' -d "{\"model_path\": \"$version.onnx\"}"
echo
