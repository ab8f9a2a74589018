"""Getting a trained pipeline's encoder out of spaCy: Hugging Face directories and ONNX.

`hf.py` writes a `ModernBertModel` directory (config, safetensors, tokenizer, model card)
from the weights through the one explicit name mapping of `encoder/modules.py`; `onnx.py`
exports our own forward to ONNX and checks it with ONNX Runtime. The commands are
`cli/export.py` (`export-hf`, `export-onnx`).
"""
