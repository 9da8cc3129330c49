"""Geo maths for geolocation: distances, metrics, H3 cells and galleries.

- :mod:`.distance`: haversine (numpy / torch, R = 6,371 km), coordinate validation.
- :mod:`.metrics`: median / mean error, accuracy at 1 / 25 / 200 / 750 / 2,500 km, seeds, CDF.
- :mod:`.h3cells`: complete H3 cell lists at resolutions 0-2 with parent / children maps.
- :mod:`.gallery`: candidate-location galleries (grids, land, files, dataset-derived).

Coordinates are always ``(..., 2)`` arrays of (latitude, longitude) in degrees.
"""
