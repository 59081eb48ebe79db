"""Object-level idempotency, in the style of Powertools for AWS Lambda: the logic in ``base``,
the storage in ``dynamodb``."""
