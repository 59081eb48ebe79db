"""The local runtime: moto's server on loopback as an embedded AWS endpoint, the pipeline's
resources created on it from ``Settings``, and the Lambda handlers driven as AWS would."""
