"""botify's world, listener simulator, policies, logs and A/B analysis.

Two sides. The public data contract, :mod:`sim_bridge.contract` (catalog, logs, recommendation
files, column names, atomic files and the config loader), is all the model side may import. The
hidden side: the world's truth (:mod:`sim_bridge.world`, :mod:`sim_bridge.worldgen`), the
simulator (:mod:`sim_bridge.simulator`, checked by :mod:`sim_bridge.reference`), the policies,
the A/B test, the built-in default world (:mod:`sim_bridge.defaults`), the HTTP driver and live
sessions, and the command line (:mod:`sim_bridge.cli`). ``tests/model/test_no_hidden_data.py``
guards the boundary.
"""
