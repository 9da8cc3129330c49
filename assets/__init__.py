"""geoforensics assets."""
