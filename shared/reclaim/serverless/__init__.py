"""reclaim on AWS Lambda: event decoding, batch handling, deadlines, validation and build.

The functions in ``functions/<name>/app.py`` are thin: they hand the Lambda event to the
adapters here, which feed the same parser, policy handlers and store as the bus listener.
"""
