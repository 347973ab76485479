"""Turns a site file and its course folders into JupyterHub configuration."""
