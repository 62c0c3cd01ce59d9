-- wrk script for the cross-check (bench/README.md): the same request the bench's generator sends.
-- The body must stay equal to kPredictBody in bench/lib/request-bodies.ts (test/bench/wrk-script.test.ts).
--   wrk -t1 -c64 -d10s -s bench/wrk/post.lua --latency http://127.0.0.1:PORT/predict
wrk.method = "POST"
wrk.body   = '{"price": 612.5, "volume": 1520.3, "bid_volume": 812.0, "ask_volume": 640.5, "symbol": "BNBUSDT"}'
wrk.headers["Content-Type"] = "application/json"
