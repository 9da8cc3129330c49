"""The synthetic soundscape world: a seeded stand-in for iNatSounds and XCDC.

Real training data cannot be downloaded on these machines, so ``geoforensics data synth``
writes a synthetic natural-sound world in the real formats, with its true range model beside
it (:class:`SyntheticRangeModel`). Everything it writes is labelled SYNTHETIC.
"""

from geoforensics.core.synth.ranges import (
    PRESENCE_THRESHOLD,
    WEEKS,
    SpeciesRange,
    SyntheticRangeModel,
    date_to_week,
)
from geoforensics.core.synth.render import SAMPLE_RATE, render_recording
from geoforensics.core.synth.species import (
    SHAPES,
    CallParams,
    Species,
    activity_level,
    render_phrase,
)
from geoforensics.core.synth.world import (
    GENERATOR_VERSION,
    PRESETS,
    GenerationReport,
    World,
    WorldConfig,
    build_world,
    generate_world,
    get_config,
    world_statistics,
)

__all__ = [
    "GENERATOR_VERSION",
    "PRESENCE_THRESHOLD",
    "PRESETS",
    "SAMPLE_RATE",
    "SHAPES",
    "WEEKS",
    "CallParams",
    "GenerationReport",
    "Species",
    "SpeciesRange",
    "SyntheticRangeModel",
    "World",
    "WorldConfig",
    "activity_level",
    "build_world",
    "date_to_week",
    "generate_world",
    "get_config",
    "render_phrase",
    "render_recording",
    "world_statistics",
]
