"""What measures the product: scorers, clip makers and naive baselines (bench/ and tests/ use them; the app never does)."""
