"""AWS at the edge: S3, SQS, DynamoDB and EventBridge adapters, and the Lambda handlers that
wire them to the core. Nothing here is imported by the core."""
