"""The Voilà demo gallery, a hub service: listing, access, kernels (see README.md)."""
