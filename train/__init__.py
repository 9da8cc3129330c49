"""geoforensics train."""
