"""The DSSM recommender: features from logs, the two towers, training, inference, checkpoints.

Reads only the public data contract (:mod:`sim_bridge.contract`: the catalog, botify logs and
recommendation files); never the simulator's hidden truth.
"""
