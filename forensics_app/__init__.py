"""geoforensics forensics_app."""
