"""geoforensics core.geoclip."""
