"""The HTTP service: FastAPI over a `PolicyStore`, with response models for its OpenAPI schema.

Owns `create_app` (`server`) and the response shapes (`server_models`). May import every folder
below it; it formats for people only where a client asks for text (`format=text|mermaid`).
"""
