"""geoforensics core.geo."""
