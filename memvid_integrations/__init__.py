"""Framework adapters (LangChain, LangGraph, LlamaIndex). Importing this imports no framework."""
