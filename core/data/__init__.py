"""geoforensics core.data."""
