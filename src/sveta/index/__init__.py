"""Vector indexes: the VectorIndex Protocol, its config.json, and the embedded FAISS backend."""
