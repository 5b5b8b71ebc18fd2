"""Refine the annotated data: which messages to annotate next, which annotations look wrong."""
