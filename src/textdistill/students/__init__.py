"""Students: small, fast models distilled from a teacher (static embedding bag, BiLSTM, small
transformer) and early exit for transformers. Each is a :class:`TextClassifier` kind."""
