"""Species evidence: range models, BirdNET, species-range geolocation and fusion."""
