"""geoforensics eval."""
