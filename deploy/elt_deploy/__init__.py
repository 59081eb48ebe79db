"""The CDK app's constructs: the pipeline stack, its optional modules, and the Lambda bundle."""
