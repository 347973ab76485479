"""Where learner sessions run. Depends on the Jupyter ecosystem only, never on hub_config."""
