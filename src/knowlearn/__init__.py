"""knowlearn: teach language models new facts they can recall.

Implements Zhu et al., "Effective LLM Knowledge Learning via Model Generalization"
(arXiv 2503.03705): continued pre-training on documents, instruction tuning on QA, and
the paper's remedies (formatting augmentation, sharpness-aware minimization).
"""

from knowlearn.errors import KnowlearnError

__version__ = "0.1.0"
__all__ = ["KnowlearnError", "__version__"]
