"""Adapters for the frameworks people already embed in; each is optional.

Import the one you use; nothing here imports a framework until then:

- ``imagebind_sdk.integrations.langchain``: ``ImageBindEmbeddings`` (LangChain ``Embeddings``), extra ``[langchain]``
- ``imagebind_sdk.integrations.llamaindex``: ``ImageBindEmbedding`` (LlamaIndex ``MultiModalEmbedding``), extra ``[llamaindex]``
- ``imagebind_sdk.integrations.lancedb``: the LanceDB embedding function ``"imagebind-sdk"``, extra ``[lancedb]``

Hugging Face ``datasets`` columns need no adapter: ``embed()`` takes their feature values
as they are (:mod:`imagebind_sdk.preprocess.hf_datasets`, part of preprocessing).

Every adapter takes ``model=`` (an already loaded :class:`~imagebind_sdk.ImageBind`,
shared, not reloaded) or ``checkpoint=`` plus the load options ``modalities``,
``device``, ``dtype``, ``quantize`` and ``backend`` (``"torch"`` or ``"onnxruntime"``; see
:mod:`imagebind_sdk.integrations.shared`).
"""
