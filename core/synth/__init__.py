"""geoforensics core.synth."""
