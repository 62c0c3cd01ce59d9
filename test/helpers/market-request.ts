/**
 * Every field of a valid request (HTTP names) except timestamp_ms, varied so that the model's
 * answers differ. Callers add the timestamp of the bar they need.
 */
export function marketFields (symbol: string, rand: () => number): Record<string, number | string> {
  const price = 50 + rand() * 900
  const spread = price * (0.00005 + rand() * 0.002)
  const open = price * (1 + (rand() - 0.5) * 0.01)
  return {
    symbol,
    price,
    open,
    high: Math.max(price, open) * (1 + rand() * 0.004),
    low: Math.min(price, open) * (1 - rand() * 0.004),
    volume: rand() * 5000,
    bid_volume: rand() * 800,
    ask_volume: rand() * 800,
    best_bid: price - spread / 2,
    best_ask: price + spread / 2,
    bid_depth_5: rand() * 300,
    ask_depth_5: rand() * 300,
    btc_price: 60_000 + rand() * 5000,
    funding_rate: (rand() - 0.5) * 0.001,
  }
}
