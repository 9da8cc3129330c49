"""geoforensics.core: the library under every command and page.

Audio front-end (``audio``), geo maths and galleries (``geo``), the GeoCLIP location space
(``geoclip``), dataset readers (``data``) and the synthetic soundscape world (``synth``).
"""
