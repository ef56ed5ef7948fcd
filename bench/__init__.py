"""Benchmarks: the engine against the official lpips package, the app loop in a browser, and a class-sized load."""
