//! Behaviour tests of the Redis parser.
