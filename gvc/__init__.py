"""gvc: diffusion-based singing voice conversion (a rebuild of Grad-SVC)."""

__version__ = "0.1.0"
