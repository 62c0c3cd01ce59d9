#!/bin/sh
# Placeholder for the trading bot in docker-compose.yml: polls the ML service the way the bot does
# (GET /health, then POST /predict once per interval) and prints what it gets. POSIX sh + curl, so
# it runs in curlimages/curl. Replace this service with the real bot.
#
#   ML_SERVICE_URL  base URL of the service (the bot's ml_service.base_url)   default http://ml-service:8000
#   BOT_SYMBOL      symbol to ask about                                         default WBNBUSDT
#   BOT_INTERVAL_S  seconds between predictions                                 default 1
#   BOT_TIMEOUT_S   per-request timeout (the bot's timeout_ms is 100)            default 1
#   BOT_ITERATIONS  stop after this many predictions (0 = forever)              default 0
#
# It sends the symbol in the body and in an X-Symbol header: behind the symbol-affine HAProxy
# recipe (deploy/haproxy) the header is what keeps a symbol on one replica when the body cannot
# be read (docs/scaling.md). The real bot's HTTP client should do the same.
set -u
url=${ML_SERVICE_URL:-http://ml-service:8000}
symbol=${BOT_SYMBOL:-WBNBUSDT}
interval=${BOT_INTERVAL_S:-1}
timeout=${BOT_TIMEOUT_S:-1}
iterations=${BOT_ITERATIONS:-0}

health=$(curl -s -m "$timeout" "$url/health" || echo '{"status":"unreachable"}')
echo "health $health"

i=0
price=600
while [ "$iterations" -eq 0 ] || [ "$i" -lt "$iterations" ]; do
  i=$((i + 1))
  # A small deterministic walk around 600 so the features move.
  price=$(( 600 + (i * 7) % 13 - 6 ))
  body="{\"symbol\":\"$symbol\",\"price\":$price.5,\"volume\":1500,\"bid_volume\":800,\"ask_volume\":650}"
  reply=$(curl -s -m "$timeout" -w ' http=%{http_code}' -H 'content-type: application/json' \
               -H "X-Symbol: $symbol" -d "$body" "$url/predict") || true  # http=000: unreachable
  echo "predict $i $reply"
  sleep "$interval"
done
