"""Exploratory (not pre-registered): balance weights rescaled so that each level's weights sum to
their Kish effective sample size instead of the level's number of comparisons.

Question: is the loss of ``balance="weights"`` at rho = 0.8-0.9 (balance_weights.md) due to the
weighted likelihood claiming more information than the weighted sample holds (weights up to 10
acting as pseudo-counts)? With sum w = ESS the likelihood claims no more than the ESS.

    taskset -c 1 python benchmarks/causal_results/balance_weights_ess.py \
        --out benchmarks/causal_results/causal_table2s_weighted_ess.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import jax.numpy as jnp

from bayespref import causal_experiments as ce
from bayespref.models import Conditioned


@dataclasses.dataclass(frozen=True)
class ESSWeighted(Conditioned):
    """``Conditioned(balance="weights")`` with each level's weights scaled to sum to its ESS."""

    def arrays(self, data, *, with_outcome: bool = True):
        out = super().arrays(data, with_outcome=with_outcome)
        bw = self.balance_weights(data)
        share = bw.summary()["ess_share"].to_numpy()
        out["balance_weight"] = jnp.asarray(bw.weights * share[bw.level])
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rhos", type=float, nargs="+", default=[0.7, 0.8, 0.9])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    t0 = time.time()
    df = ce.confounding_study(rhos=a.rhos, seeds=a.seeds, simulator="shared", n_users=100, comparisons_per_user=20,
                              n_test=2000, models={"weighted_ess": ESSWeighted("objective", balance="weights")})
    df.insert(0, "study", "table2s")
    df["wall_s"] = time.time() - t0
    df.to_csv(a.out, index=False)
    print(df.to_string())
    print(f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
