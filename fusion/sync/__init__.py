"""Online synchronization of a message log: the synchronizer that turns messages into frames
(`online`) and the ingest pump that feeds it (`ingest`)."""
