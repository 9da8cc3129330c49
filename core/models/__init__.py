"""Audio models: encoder registry, heads, the geolocator, reference checkpoints, pooling, inference."""
