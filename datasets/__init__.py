"""Dataset tools: the offline synthetic generator (``datasets.make_synthetic``) and download scripts."""
