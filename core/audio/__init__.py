"""geoforensics core.audio."""
