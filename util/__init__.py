"""Training machinery: the trainer loop, logging, display and image helpers."""
