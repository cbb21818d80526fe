"""The hyperparameter search service: Ray Tune drives, Optuna proposes, the simulator scores.

Only this package imports ``ray``. Entry points: ``python -m search.run`` (the search) and
``python -m search.export`` (a trial's recommendations in botify's format).
"""
