#!/bin/sh
# Retrain on the server's capture files and put the candidate in shadow mode (docs/monitoring.md).
#
#   ADMIN_TOKEN=... [TRAIN_CONFIG=training/config/capture.json] scripts/retrain-shadow.sh CAPTURE_DIR SYMBOL VERSION [SERVER_URL]
#
# 1. replay the capture files of SYMBOL into a training matrix (real order book, BTC, funding);
# 2. train and export models/VERSION.{onnx,json,golden.json} (training/train.py refuses to overwrite);
# 3. add the drift reference (feature_reference) from the matrix's rows (all of them: narrow it
#    to the train split with scripts/feature-reference.ts --until);
# 4. POST /admin/shadow: the server scores the candidate beside the serving model (role="shadow"
#    in /metrics realized). Promote it later with POST /admin/reload {"model_path": "VERSION.onnx"}.
# Run from the repository root, on the machine whose models folder the server reads.
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
# The config's split boundaries must fall inside the captured period (train.py refuses an empty split).
config=${TRAIN_CONFIG:-training/config/phase1.json}
matrix=training/out/$symbol-capture.csv

npm run --silent replay -- --capture-dir "$capture_dir" --symbol "$symbol" --out "$matrix"
"$python" training/train.py "$config" --version "$version" --matrix "$matrix"
npx tsx scripts/feature-reference.ts --matrix "$matrix" --write "models/$version.json"
: "${ADMIN_TOKEN:?set ADMIN_TOKEN to the server's admin_token}"
curl -fsS -X POST "$url/admin/shadow" -H "authorization: Bearer $ADMIN_TOKEN" \
  -H 'content-type: application/json' -d "{\"model_path\": \"$version.onnx\"}"
echo
