"""Simulated paired comparisons with known true parameters (same seed, same data).

* :mod:`~bayespref.simulate.families` -- data from each model family (Bradley-Terry, hierarchical,
  latent types, hidden context, position bias, binary factors) and the building blocks they share;
* :mod:`~bayespref.simulate.rankings` -- rankings (complete, top-k, tied) from pooled, per-user or
  per-type worths;
* :mod:`~bayespref.simulate.arena` -- raw Arena-style battles and a judge table with known
  per-region preferences (the alignment notebook and the report's tests);
* :mod:`~bayespref.simulate.causal` -- the causal failure modes of preference learning (latent
  positivity, confounded objectives, prompt-dependent rewards) that the causal and sensitivity
  notebooks teach with. The paper's studies built on them are outside the package, in
  ``experiments/``.
"""

from bayespref.simulate.arena import SimulatedArena, arena
from bayespref.simulate.causal import confounded_objective, confounded_shared, latent_positivity, nonadditive_prompt
from bayespref.simulate.families import (
                                         Simulated,
                                         binary_factors,
                                         bradley_terry,
                                         hidden_context,
                                         hierarchical,
                                         latent_types,
                                         position_bias,
)
from bayespref.simulate.rankings import SimulatedRankings, rankings

__all__ = ["Simulated", "SimulatedArena", "arena", "binary_factors", "bradley_terry", "confounded_objective", "confounded_shared",
           "hidden_context", "hierarchical", "latent_positivity", "latent_types", "nonadditive_prompt",
           "position_bias", "rankings", "SimulatedRankings"]
