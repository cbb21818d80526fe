"""The DSSM recommender: features from logs, the two towers, training, inference, checkpoints.

Reads only the public catalog and botify logs (``sim_bridge.columns``, ``configio``,
``catalog``, ``atomic``, ``logs``, ``recfile``); never the simulator's hidden truth.
"""
