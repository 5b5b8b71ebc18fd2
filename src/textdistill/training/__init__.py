"""Fine-tuning transformer classifiers."""
